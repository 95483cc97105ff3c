//! End-to-end tests of the foundation commands through the real binary:
//! keygen, commit (with OpenZeppelin's own JavaScript library checking the
//! tree dump), scenario validation errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn sealroom(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sealroom"))
        .args(args)
        .output()
        .expect("run sealroom")
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn keygen(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    let o = sealroom(&["keygen", "--out", p.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    p
}

#[test]
fn keygen_writes_private_file_and_prints_public_half() {
    let dir = tempfile::tempdir().unwrap();
    let k = keygen(dir.path(), "id.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&k).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let o = sealroom(&["keygen", "--out", k.to_str().unwrap(), "--public"]);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["format"], "sealroom-public-identity/1");
    assert!(!String::from_utf8_lossy(&o.stdout).contains("secret"));
    // Refuses to overwrite: exit 2 naming the flag.
    let o = sealroom(&["keygen", "--out", k.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--out"), "{}", stderr(&o));
}

#[test]
fn commit_prints_commitment_and_tree_verifies_in_openzeppelin_js() {
    let dir = tempfile::tempdir().unwrap();
    let k = keygen(dir.path(), "hospital-a.json");
    let tree = dir.path().join("tree.json");
    let blob = dir.path().join("a.sealed");
    let data = repo().join("scenarios/data/breast-cancer/hospital-a.csv");
    let o = sealroom(&[
        "commit",
        data.to_str().unwrap(),
        "--key",
        k.to_str().unwrap(),
        "--tree-out",
        tree.to_str().unwrap(),
        "--blob-out",
        blob.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value =
        serde_json::from_slice(&o.stdout).expect("exactly one JSON object on stdout");
    assert_eq!(v["record_count"], 228);
    let root = v["merkle_root"].as_str().unwrap().to_string();
    assert_eq!(
        v["ciphertext_len"].as_u64().unwrap(),
        std::fs::metadata(&blob).unwrap().len()
    );
    // The blob holds no plaintext.
    let blob_bytes = std::fs::read(&blob).unwrap();
    assert!(!blob_bytes.windows(11).any(|w| w == b"mean_radius"));

    // OpenZeppelin's own library loads the dump, validates it, and verifies
    // a proof for every record against the same root.
    let node_modules = repo().join("contracts/node_modules/@openzeppelin/merkle-tree");
    assert!(
        node_modules.exists(),
        "contracts/node_modules missing: run the test command (scripts/test), which installs the npm tools"
    );
    let script = r#"
        const {StandardMerkleTree} = require("@openzeppelin/merkle-tree");
        const t = StandardMerkleTree.load(JSON.parse(require("fs").readFileSync(process.argv[1])));
        t.validate();
        let ok = 0;
        for (const [i, v] of t.entries()) {
            if (StandardMerkleTree.verify(t.root, ["uint256", "bytes32"], v, t.getProof(i))) ok++;
        }
        console.log(JSON.stringify({root: t.root, ok, n: t.length}));
    "#;
    let o = Command::new("node")
        .current_dir(repo().join("contracts"))
        .args(["-e", script, tree.to_str().unwrap()])
        .output()
        .expect("node is needed by the test suite");
    assert!(o.status.success(), "{}", stderr(&o));
    let js: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(js["root"], root.as_str());
    assert_eq!(js["ok"], 228);
    assert_eq!(js["n"], 228);
}

#[test]
fn commit_rejects_bad_inputs_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let k = keygen(dir.path(), "k.json");
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "a,b,label\n1,2,0\n3,4\n").unwrap();
    let o = sealroom(&[
        "commit",
        bad.to_str().unwrap(),
        "--key",
        k.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("bad.csv: line 3"), "{}", stderr(&o));
    // Nothing half-written.
    assert!(!dir.path().join("bad.csv.sealed").exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);

    let o = sealroom(&["commit", "/nonexistent.csv", "--key", k.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("/nonexistent.csv"));
    let o = sealroom(&[
        "commit",
        bad.to_str().unwrap(),
        "--key",
        "/nonexistent-key.json",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--key"));
}

/// Writes a variant of the breast-cancer scenario into `dir` (datasets are
/// referenced by absolute path) after applying `edit` to its text.
fn scenario_variant(dir: &Path, name: &str, edit: impl Fn(String) -> String) -> PathBuf {
    let base =
        std::fs::read_to_string(repo().join("scenarios/breast-cancer-3-hospitals.toml")).unwrap();
    let data = repo().join("scenarios/data");
    let text = edit(base.replace("\"data/", &format!("\"{}/", data.display())));
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn check(p: &Path) -> Output {
    sealroom(&["scenario", "check", p.to_str().unwrap()])
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .expect("needle in scenario")
        + 1
}

#[test]
fn shipped_scenarios_are_valid() {
    for s in ["breast-cancer-3-hospitals.toml", "digits-3-labs.toml"] {
        let o = check(&repo().join("scenarios").join(s));
        assert!(o.status.success(), "{s}: {}", stderr(&o));
    }
}

#[test]
fn bad_scenarios_exit_2_naming_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // (file name, edit, expected field, line needle in the edited text)
    type Edit = Box<dyn Fn(String) -> String>;
    let cases: Vec<(&str, Edit, &str, &str)> = vec![
        (
            "missing-key.toml",
            Box::new(|t: String| t.replace("epochs = 300\n", "")),
            "training",
            "[training]",
        ),
        (
            "wrong-type.toml",
            Box::new(|t: String| t.replace("epochs = 300", "epochs = \"sixty\"")),
            "training.epochs",
            "epochs = \"sixty\"",
        ),
        (
            "unknown-model.toml",
            Box::new(|t: String| {
                t.replace("kind = \"logistic-regression\"", "kind = \"transformer\"")
            }),
            "model.kind",
            "kind = \"transformer\"",
        ),
        (
            "party-without-dataset.toml",
            Box::new(|t: String| {
                let i = t.find("dataset = ").unwrap();
                let j = i + t[i..].find('\n').unwrap() + 1;
                format!("{}{}", &t[..i], &t[j..])
            }),
            "party[0]",
            "[[party]]",
        ),
        (
            "duplicate-party.toml",
            Box::new(|t: String| t.replace("name = \"hospital-c\"", "name = \"hospital-a\"")),
            "party[2].name",
            "dataset = \"",
        ),
        (
            "wrong-columns.toml",
            Box::new(|t: String| t.replace("\"worst_symmetry\"", "\"worst_symmetry_x\"")),
            "party[0].dataset",
            "dataset = \"",
        ),
    ];
    for (name, edit, field, needle) in cases {
        let p = scenario_variant(d, name, edit);
        let o = check(&p);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{name}: {err}");
        assert!(
            err.contains(p.to_str().unwrap()),
            "{name}: no file in {err}"
        );
        assert!(
            err.contains(&format!(": {field}")),
            "{name}: no field `{field}` in {err}"
        );
        let text = std::fs::read_to_string(&p).unwrap();
        let line = if name == "duplicate-party.toml" {
            // the third party's name line
            text.lines()
                .enumerate()
                .filter(|(_, l)| l.contains("name = \"hospital-a\""))
                .nth(1)
                .unwrap()
                .0
                + 1
        } else if name == "wrong-columns.toml" {
            line_of(&text, "hospital-a.csv")
        } else {
            line_of(&text, needle)
        };
        assert!(
            err.contains(&format!("{}:{line}:", p.display())),
            "{name}: expected line {line} in {err}"
        );
    }
}

#[test]
fn scenario_reports_every_problem_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let p = scenario_variant(dir.path(), "many.toml", |t| {
        t.replace("epochs = 300", "epochs = 0")
            .replace("learning_rate = 0.01", "learning_rate = -1.0")
            .replace("name = \"hospital-c\"", "name = \"hospital-b\"")
    });
    let o = check(&p);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    for f in ["training.epochs", "training.learning_rate", "party[2].name"] {
        assert!(err.contains(f), "{f} missing in {err}");
    }
}
