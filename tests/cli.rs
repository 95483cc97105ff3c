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
    // An output that cannot be written: exit 2 naming it, nothing written
    // (the outputs are opened before the pass).
    let good = repo().join("scenarios/data/breast-cancer/hospital-a.csv");
    let nowhere = dir.path().join("missing-dir/tree.json");
    let o = sealroom(&[
        "commit",
        good.to_str().unwrap(),
        "--key",
        k.to_str().unwrap(),
        "--blob-out",
        dir.path().join("a.sealed").to_str().unwrap(),
        "--tree-out",
        nowhere.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("missing-dir/tree.json"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    // An output over an input or over another output: refused before
    // anything is written, naming both flags; the inputs are untouched.
    let data = dir.path().join("mine.csv");
    std::fs::copy(&good, &data).unwrap();
    let before = std::fs::read(&data).unwrap();
    let key_before = std::fs::read(&k).unwrap();
    let d = data.to_str().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let same = dir.path().join("sub/../x.out");
    let key = k.to_str().unwrap();
    for (extra, flags) in [
        (vec!["--blob-out", d], ("DATASET", "--blob-out")),
        (vec!["--tree-out", key], ("--key", "--tree-out")),
        (
            vec!["--blob-out", "x.out", "--tree-out", same.to_str().unwrap()],
            ("--blob-out", "--tree-out"),
        ),
        (
            vec![
                "--data-key-out",
                "x.out.commitment.json",
                "--blob-out",
                "x.out",
            ],
            ("--commitment-out", "--data-key-out"),
        ),
    ] {
        let mut argv = vec!["commit", d, "--key", key];
        argv.extend(extra.iter().copied());
        let o = Command::new(env!("CARGO_BIN_EXE_sealroom"))
            .current_dir(dir.path())
            .args(&argv)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(
            e.contains(flags.0) && e.contains(flags.1) && e.contains("same file"),
            "{e}"
        );
        assert_eq!(std::fs::read(&data).unwrap(), before);
        assert_eq!(std::fs::read(&k).unwrap(), key_before);
        assert!(!dir.path().join("x.out").exists());
    }
    // Temporary files that cannot be made are said to be that, with the
    // directory, and nothing is left behind.
    let o = Command::new(env!("CARGO_BIN_EXE_sealroom"))
        .current_dir(dir.path())
        .env("TMPDIR", "/nonexistent-tmp")
        .args(["commit", "mine.csv", "--key", key, "--tree-out", "t.json"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("temporary files in /nonexistent-tmp"),
        "{}",
        stderr(&o)
    );
    assert!(!dir.path().join("t.json").exists());
    assert!(!dir.path().join("mine.csv.sealed").exists());
    // Distinct files under relative names are accepted.
    let o = Command::new(env!("CARGO_BIN_EXE_sealroom"))
        .current_dir(dir.path())
        .args([
            "commit",
            "mine.csv",
            "--key",
            key,
            "--blob-out",
            "sub/../x.out",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(dir.path().join("x.out").exists());
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
            "same-dataset-twice.toml",
            Box::new(|t: String| t.replace("hospital-b.csv", "hospital-a.csv")),
            "party[1].dataset",
            "hospital-a.csv",
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
        } else if name == "same-dataset-twice.toml" {
            // the second party's dataset line
            text.lines()
                .enumerate()
                .filter(|(_, l)| l.contains("hospital-a.csv"))
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

/// A small scenario (two float features, `classes` classes, a validation
/// split) in `dir` whose one party's dataset `a.csv` holds `csv`; `policy`
/// is the `[policy]` table's body.
fn small_scenario(dir: &Path, classes: u32, csv: &[u8], policy: &str) -> PathBuf {
    std::fs::write(dir.join("a.csv"), csv).unwrap();
    let p = dir.join("small.toml");
    std::fs::write(
        &p,
        format!(
            "[session]\nname = \"wine\"\n\
             [schema]\nfeatures = [\"alcohol\", \"ash\"]\nlabel = \"class\"\nlabel_classes = {classes}\n\
             [model]\nkind = \"logistic-regression\"\n\
             [training]\nepochs = 5\nbatch_size = 8\noptimizer = \"adam\"\nlearning_rate = 0.01\nseed = 1\nvalidation_split = 0.2\n\
             [owner]\nname = \"owner\"\n\
             [[party]]\nname = \"a\"\ndataset = \"a.csv\"\n\
             [policy]\n{policy}\n"
        ),
    )
    .unwrap();
    p
}

const SIM_POLICY: &str =
    "accepted_kinds = [\"sev-snp\", \"tdx\", \"sim\"]\nallow_simulation = true";

/// `scenario check` reads a dataset the way `commit` (and so `run`) will:
/// what one refuses the other refuses, at the same CSV line, and check says
/// which scenario line names the file (issue 14, item 4).
#[test]
fn scenario_check_refuses_what_commit_refuses_at_the_same_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = keygen(d, "k.json");
    let csv = d.join("a.csv");
    // (dataset, CSV line, message start)
    let cases: [(&[u8], usize, &str); 5] = [
        (
            b"alcohol,ash,class\n1,2,0\n1,2,1\n\n2,3,0\n",
            4,
            "blank line inside the dataset",
        ),
        // A spreadsheet's unnamed index column.
        (
            b",alcohol,ash,class\n0,1,2,0\n1,1,2,1\n",
            1,
            "header column 1 has an empty name (\"\")",
        ),
        (
            b"\xEF\xBB\xBFalcohol,ash,class\n1,2,0\n",
            1,
            "the file starts with a UTF-8 byte-order mark",
        ),
        (
            b"alcohol,ash,,class\n1,2,,0\n",
            1,
            "header column 3 has an empty name (\"\")",
        ),
        (
            b"alcohol,ash,class\n1,2,0\n1,2\n",
            3,
            "2 fields, but the header has 3",
        ),
    ];
    for (data, line, message) in cases {
        let p = small_scenario(d, 2, data, SIM_POLICY);
        let o = check(&p);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{message}: {err}");
        let text = std::fs::read_to_string(&p).unwrap();
        let want = format!(
            "{}:{}: party[0].dataset: {}:{line}: {message}",
            p.display(),
            line_of(&text, "dataset ="),
            csv.display()
        );
        assert!(err.contains(&want), "`{err}` should contain `{want}`");
        let o = sealroom(&[
            "commit",
            csv.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            "--blob-out",
            d.join("blob").to_str().unwrap(),
        ]);
        assert_eq!(
            o.status.code(),
            Some(2),
            "{message}: commit: {}",
            stderr(&o)
        );
        assert!(
            stderr(&o).contains(&format!("line {line}: {message}")),
            "{message}: commit says {}",
            stderr(&o)
        );
    }
    // A blank line at the end is fine for both.
    let p = small_scenario(d, 2, b"alcohol,ash,class\n1,2,0\n1,2,1\n\n", SIM_POLICY);
    let o = check(&p);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// Invisible characters in names are shown escaped and quoted; a feature
/// value names the type in the scenario's word, with its article.
#[test]
fn scenario_check_shows_names_and_types_in_the_scenarios_words() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = small_scenario(
        d,
        2,
        "alcohol\u{200b},ash,class\n1,2,0\n".as_bytes(),
        SIM_POLICY,
    );
    let err = stderr(&check(&p));
    assert!(
        err.contains(
            ":1: columns do not match the schema; missing: \"alcohol\"; not in the schema: \"alcohol\\u{200b}\""
        ),
        "{err}"
    );
    let text = std::fs::read_to_string(&p).unwrap().replace(
        "label_classes = 2",
        "label_classes = 2\nfeature_type = \"integer\"",
    );
    std::fs::write(&p, text).unwrap();
    std::fs::write(d.join("a.csv"), "alcohol,ash,class\n1.5,2,0\n").unwrap();
    let o = check(&p);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(":2: column \"alcohol\": \"1.5\" is not an integer"),
        "{}",
        stderr(&o)
    );

    // A valid scenario is summarised in its own words, not Rust's.
    let o = check(&repo().join("scenarios/breast-cancer-3-hospitals.toml"));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    for want in [
        "model     logistic-regression\n",
        "adam lr 0.01",
        "accepted_kinds sev-snp, tdx, sim; allow_simulation true",
    ] {
        assert!(out.contains(want), "`{want}` missing in {out}");
    }
    for debug in ["LogisticRegression", "SevSnp", "Adam", "hidden=[]"] {
        assert!(!out.contains(debug), "`{debug}` in {out}");
    }
    let o = check(&repo().join("scenarios/digits-3-labs.toml"));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(out.contains("model     mlp hidden [128]\n"), "{out}");
}

/// Warnings and notes do not fail the check; `--json` prints one object
/// whether the scenario is valid or not, with every problem in it.
#[test]
fn scenario_check_warns_notes_and_always_prints_one_json_object() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let json = |p: &Path| {
        let o = sealroom(&["scenario", "check", p.to_str().unwrap(), "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("one JSON object on stdout ({e}): {}", stderr(&o)));
        (o.status.code(), v)
    };

    // 1-based labels with label_classes = 4: class 0 unused, a warning.
    let p = small_scenario(
        d,
        4,
        b"alcohol,ash,class\n1,2,1\n1,2,2\n2,3,3\n",
        SIM_POLICY,
    );
    let text = std::fs::read_to_string(&p).unwrap();
    let o = check(&p);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("valid (1 warning)"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let warning = format!(
        "{}:{}: warning: schema.label_classes: class 0 of 0..4 appears in no party's dataset",
        p.display(),
        line_of(&text, "label_classes")
    );
    assert!(stderr(&o).contains(&warning), "{}", stderr(&o));
    let (code, v) = json(&p);
    assert_eq!(code, Some(0));
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(v["problems"][0]["severity"], "warning", "{v}");
    assert_eq!(v["problems"][0]["field"], "schema.label_classes", "{v}");
    assert_eq!(v["session"], "wine", "{v}");

    // A hardware-only policy: valid, with a note that `run` needs sim.
    let p = small_scenario(
        d,
        2,
        b"alcohol,ash,class\n1,2,0\n1,2,1\n",
        "accepted_kinds = [\"sev-snp\", \"tdx\"]",
    );
    let o = check(&p);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(": note: policy.accepted_kinds: does not list \"sim\": `sealroom run` runs a simulated node")
            && err.contains("allow_simulation = true")
            && err.contains("A session over the network with a TEE node this policy accepts is fine"),
        "{err}"
    );
    let (_, v) = json(&p);
    assert_eq!(v["problems"][0]["severity"], "note", "{v}");

    // Errors: exit 2, and still one object on stdout, every problem in it.
    let p = scenario_variant(d, "bad.toml", |t| {
        t.replace("epochs = 300", "epochs = 0")
            .replace("name = \"hospital-c\"", "name = \"hospital-b\"")
    });
    let (code, v) = json(&p);
    assert_eq!(code, Some(2));
    assert_eq!(v["valid"], false, "{v}");
    let problems = v["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 2, "{v}");
    let text = std::fs::read_to_string(&p).unwrap();
    assert_eq!(problems[0]["field"], "training.epochs");
    assert_eq!(problems[0]["line"], line_of(&text, "epochs = 0"));
    assert_eq!(problems[0]["file"], p.display().to_string());
    assert_eq!(problems[0]["severity"], "error");
    assert!(problems[0]["message"]
        .as_str()
        .unwrap()
        .contains("1..=100000"));
    assert_eq!(problems[1]["field"], "party[2].name");
    // Even a file that does not parse.
    let p = d.join("broken.toml");
    std::fs::write(&p, "[session\n").unwrap();
    let (code, v) = json(&p);
    assert_eq!(code, Some(2));
    assert_eq!(v["valid"], false, "{v}");
    assert_eq!(v["problems"][0]["line"], 1, "{v}");
    let (code, v) = json(&d.join("missing.toml"));
    assert_eq!(code, Some(2));
    assert_eq!(v["problems"][0]["field"], "(file)", "{v}");
}

// ---------------------------------------------------------------------------
// The regulator's verifier checks the bytes exactly as supplied (issue 11,
// Build items 4 and 7). A real session from `sealroom run` on the embedded
// chain, then its bundle altered one way at a time.

fn sealroom_in_repo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sealroom"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("run sealroom")
}

/// One real completed session (embedded chain); returns its summary.
fn real_session(out: &Path) -> serde_json::Value {
    let scenario = repo().join("scenarios/breast-cancer-3-hospitals.toml");
    let o = sealroom_in_repo(&[
        "run",
        scenario.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_slice(&o.stdout).expect("one JSON object")
}

fn verify_json(bundle: &Path, extra: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let mut args = vec!["report", "verify", bundle.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let o = sealroom_in_repo(&args);
    let v = serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null);
    (o.status.code(), v, stderr(&o))
}

fn verify_human(bundle: &Path) -> (Option<i32>, String) {
    let o = sealroom_in_repo(&["report", "verify", bundle.to_str().unwrap()]);
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

/// Head word of field `i` of an encoded IntegrityReport (after the
/// struct's offset word): 1 = kind (uint8), 10 = insecureSimulation (bool),
/// 15 = seed (uint64).
fn word(i: usize) -> usize {
    32 + 32 * i
}

fn edit_abi(b: &mut serde_json::Value, i: usize, f: impl Fn(&mut Vec<u8>)) {
    let mut bytes = hex::decode(b["reports"][i]["report_abi"].as_str().unwrap()).unwrap();
    f(&mut bytes);
    b["reports"][i]["report_abi"] = hex::encode(bytes).into();
}

#[test]
fn report_verify_checks_the_supplied_bytes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let summary = real_session(&out);
    let bundle = out.join("bundle.json");
    let original: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&bundle).unwrap()).unwrap();
    let write = |name: &str, edit: &dyn Fn(&mut serde_json::Value)| -> PathBuf {
        let mut b = original.clone();
        edit(&mut b);
        let p = dir.path().join(name);
        std::fs::write(&p, serde_json::to_vec_pretty(&b).unwrap()).unwrap();
        p
    };
    let rejected_by = |p: &Path, check: &str| -> serde_json::Value {
        let (code, v, err) = verify_json(p, &[]);
        assert_eq!(code, Some(1), "{}: {v} {err}", p.display());
        assert_eq!(v["verified"], false, "{v}");
        assert_eq!(v["failure"]["check"], check, "{}: {v}", p.display());
        v
    };

    // The untouched bundle verifies offline and says what it could not check.
    let (code, v, err) = verify_json(&bundle, &[]);
    assert_eq!(code, Some(0), "{v} {err}");
    assert_eq!(v["verified"], true);
    assert_eq!(v["source"], "offline");
    assert_eq!(v["chain"]["name"], "embedded development chain");
    assert_eq!(v["chain"]["checked"], false);
    let names: Vec<&str> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    for c in [
        "bundle.format",
        "report.canonical",
        "report.kinds",
        "report.chain",
    ] {
        assert!(names.contains(&c), "{c} missing in {names:?}");
    }
    assert!(
        !names.contains(&"chain.receipt"),
        "offline reads no receipt"
    );
    let unchecked = |v: &serde_json::Value| -> Vec<(String, serde_json::Value)> {
        v["not_checked"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| {
                assert!(
                    n["reason"]
                        .as_str()
                        .unwrap()
                        .starts_with("not checked offline"),
                    "{n}"
                );
                (n["field"].as_str().unwrap().to_string(), n["value"].clone())
            })
            .collect()
    };
    let nc = unchecked(&v);
    for f in [
        "reports[0].tx_hash",
        "reports[0].block",
        "reports[0].stored_hash",
        "reports[1].tx_hash",
        "reports[1].block",
        "chain.chain_id",
        "chain.contract",
        "chain.label",
    ] {
        assert!(nc.iter().any(|(n, _)| n == f), "{f} not listed in {nc:?}");
    }
    let (code, human) = verify_human(&bundle);
    assert_eq!(code, Some(0));
    assert!(human.contains("not checked offline"), "{human}");
    assert!(human.contains("reports[1].tx_hash"), "{human}");
    assert!(
        human.contains(summary["reports"][1]["tx_hash"].as_str().unwrap()),
        "{human}"
    );

    // (1) 32 zero bytes appended to the opened report: its hash would change,
    // its decoding would not; refused as non-canonical bytes.
    let p = write("appended.json", &|b| {
        edit_abi(b, 0, |x| x.extend_from_slice(&[0u8; 32]))
    });
    let v = rejected_by(&p, "report.canonical");
    assert!(
        v["failure"]["detail"]
            .as_str()
            .unwrap()
            .contains("reports[0]"),
        "{v}"
    );
    // (2) a nibble inside the padding of a bool, of a uint8 and of a uint64.
    for (name, field, byte) in [
        ("bool-pad.json", 10, 0),
        ("bool-pad-low.json", 10, 30),
        ("uint8-pad.json", 1, 3),
        ("uint64-pad.json", 15, 20),
    ] {
        let p = write(name, &|b| edit_abi(b, 1, |x| x[word(field) + byte] ^= 0x01));
        let v = rejected_by(&p, "report.canonical");
        let detail = v["failure"]["detail"].as_str().unwrap();
        assert!(detail.contains("reports[1]"), "{name}: {detail}");
    }
    // (3) truncated.
    let p = write("truncated.json", &|b| {
        edit_abi(b, 1, |x| x.truncate(x.len() - 32))
    });
    rejected_by(&p, "report.decode");
    // (4) a duplicated opened report.
    let p = write("duplicate.json", &|b| {
        let opened = b["reports"][0].clone();
        b["reports"].as_array_mut().unwrap().insert(1, opened);
    });
    let v = rejected_by(&p, "report.kinds");
    assert!(
        v["failure"]["detail"]
            .as_str()
            .unwrap()
            .contains("duplicate opened"),
        "{v}"
    );
    // (5) out of order.
    let p = write("reordered.json", &|b| {
        b["reports"].as_array_mut().unwrap().reverse()
    });
    rejected_by(&p, "report.kinds");
    // (6) completed relabelled as aborted: its kind field says otherwise.
    let p = write("relabel.json", &|b| {
        b["reports"][1]["kind"] = "aborted".into()
    });
    rejected_by(&p, "report.decode");

    // (7) an edited label is never printed; the name comes from the chain id.
    let p = write("label.json", &|b| {
        b["chain"]["label"] = "opBNB mainnet".into()
    });
    let (code, v, _) = verify_json(&p, &[]);
    assert_eq!(code, Some(0));
    assert_eq!(v["chain"]["name"], "embedded development chain");
    assert!(!v.to_string().contains("opBNB mainnet"), "{v}");
    let (code, human) = verify_human(&p);
    assert_eq!(code, Some(0));
    assert!(!human.contains("opBNB mainnet"), "{human}");
    assert!(human.contains("embedded development chain"), "{human}");
    // An edited chain id changes the derived name, which is shown as the
    // bundle's unchecked claim.
    let p = write("chain-id.json", &|b| {
        b["chain"]["kind"] = "rpc".into();
        b["chain"]["chain_id"] = 204.into();
    });
    let (code, v, _) = verify_json(&p, &[]);
    assert_eq!(code, Some(0));
    assert_eq!(v["chain"]["name"], "opBNB mainnet");
    assert_eq!(v["chain"]["checked"], false);
    assert!(unchecked(&v)
        .iter()
        .any(|(f, val)| f == "chain.chain_id" && val == "204"));
    let (_, human) = verify_human(&p);
    assert!(
        human.contains("opBNB mainnet (chain id 204)")
            && human.contains("as the bundle claims: not checked offline"),
        "{human}"
    );

    // (8) a wrong tx hash offline: not caught, but listed as not checked.
    let fake = format!("0x{}", "ab".repeat(32));
    let p = write("tx.json", &|b| {
        b["reports"][0]["tx_hash"] = fake.clone().into()
    });
    let (code, v, _) = verify_json(&p, &[]);
    assert_eq!(code, Some(0));
    assert!(
        unchecked(&v)
            .iter()
            .any(|(f, val)| f == "reports[0].tx_hash" && val == fake.as_str()),
        "{v}"
    );

    // (9) unknown fields and format tags: bad input, exit 2 naming file and field.
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "top-field.json",
            Box::new(|b| b["verified"] = true.into()),
            "verified",
        ),
        (
            "report-field.json",
            Box::new(|b| b["reports"][1]["trusted"] = true.into()),
            "reports[1].trusted",
        ),
        (
            "chain-field.json",
            Box::new(|b| b["chain"]["verified_by"] = "x".into()),
            "chain.verified_by",
        ),
        (
            "envelope-field.json",
            Box::new(|b| b["envelope"]["note"] = "x".into()),
            "envelope.note",
        ),
        (
            "manifest-field.json",
            Box::new(|b| b["envelope"]["manifest"]["extra"] = 1.into()),
            "envelope.manifest: unknown field `extra`",
        ),
        (
            "block-type.json",
            Box::new(|b| b["reports"][0]["block"] = "three".into()),
            "reports[0].block",
        ),
        (
            "format.json",
            Box::new(|b| b["format"] = "sealroom-bundle/9".into()),
            "format",
        ),
        (
            "envelope-format.json",
            Box::new(|b| b["envelope"]["format"] = "sealroom-evidence/9".into()),
            "envelope.format",
        ),
        (
            "manifest-format.json",
            Box::new(|b| b["envelope"]["manifest"]["format"] = "x".into()),
            "envelope.manifest.format",
        ),
        (
            "chain-kind.json",
            Box::new(|b| b["chain"]["kind"] = "mainnet".into()),
            "chain.kind",
        ),
        (
            "missing.json",
            Box::new(|b| {
                b["reports"][0].as_object_mut().unwrap().remove("signature");
            }),
            "reports[0].signature",
        ),
    ];
    for (name, edit, field) in cases {
        let p = write(name, &*edit);
        let (code, v, err) = verify_json(&p, &[]);
        assert_eq!(code, Some(2), "{name}: {v} {err}");
        assert!(err.contains(p.to_str().unwrap()), "{name}: {err}");
        assert!(err.contains(field), "{name}: no `{field}` in {err}");
        assert!(v.is_null(), "{name}: nothing on stdout");
    }

    // (10) a regulator's policy forbidding simulation: the line says so.
    let pol = dir.path().join("no-sim.toml");
    std::fs::write(&pol, "allow_simulation = false\n").unwrap();
    let (code, v, _) = verify_json(&bundle, &["--policy", pol.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{v}");
    let sim = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "simulation")
        .unwrap();
    assert_eq!(sim["ok"], false);
    let detail = sim["detail"].as_str().unwrap();
    assert!(
        detail.contains("forbids simulation") && !detail.contains("allows"),
        "{detail}"
    );
    assert!(detail.contains("no-sim.toml"), "{detail}");

    // From the chain: everything above is read and checked, nothing is left
    // unchecked, and the receipts are checked.
    let session = summary["session_id"].as_str().unwrap();
    let contract = summary["chain"]["contract"].as_str().unwrap();
    let chain_dir = out.join("chain");
    let o = sealroom_in_repo(&[
        "report",
        "verify",
        "--session",
        session,
        "--chain-dir",
        chain_dir.to_str().unwrap(),
        "--contract",
        contract,
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["source"], "chain");
    assert_eq!(v["chain"]["checked"], true);
    assert_eq!(v["not_checked"].as_array().unwrap().len(), 0, "{v}");
    assert!(v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["check"] == "chain.receipt" && c["ok"] == true));

    // A wrong --contract: exit 2, "no registry at ADDR".
    let nobody = "0x00000000000000000000000000000000000000aa";
    let o = sealroom_in_repo(&[
        "report",
        "verify",
        "--session",
        session,
        "--chain-dir",
        chain_dir.to_str().unwrap(),
        "--contract",
        nobody,
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("no registry at {nobody}")),
        "{}",
        stderr(&o)
    );
}

/// The packages (`name version`) in `cargo tree -p PACKAGE -e EDGES`.
fn dependency_set(package: &str, edges: &str) -> std::collections::BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let o = Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "-p",
            package,
            "-e",
            edges,
            "--prefix",
            "none",
        ])
        .current_dir(repo())
        .output()
        .expect("run cargo tree");
    assert!(
        o.status.success(),
        "cargo tree -p {package}: {}",
        stderr(&o)
    );
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some(format!("{} {}", w.next()?, w.next()?))
        })
        .collect()
}

/// The measured node image (`sealroom-node`) links no HTTP server, no
/// database, no EVM or chain client and no TUI, and is a fraction of the
/// `sealroom` command's dependency tree (figures in docs/trainer.md).
#[test]
fn node_dependency_tree_is_minimal() {
    let node = dependency_set("sealroom-node", "normal");
    let cli = dependency_set("sealroom", "normal");
    for banned in ["axum", "rusqlite", "revm", "alloy-provider", "ratatui"] {
        let found: Vec<&String> = node
            .iter()
            .filter(|p| {
                let name = p.split(' ').next().unwrap_or_default();
                name == banned || name.starts_with(&format!("{banned}-"))
            })
            .collect();
        assert!(found.is_empty(), "sealroom-node links {banned}: {found:?}");
        // The check is meaningful: the full command does link it.
        assert!(
            cli.iter().any(|p| p.starts_with(&format!("{banned} "))),
            "sealroom no longer links {banned}; update this test"
        );
    }
    // The regulator's verifier links no HTTP client (the protocol's client is
    // behind its `client` feature) and none of the node's training stack.
    let verifier = dependency_set("sealroom-reports", "normal");
    for banned in ["ureq", "burn", "axum", "rusqlite", "revm"] {
        assert!(
            !verifier.iter().any(|p| p.split(' ').next() == Some(banned)),
            "sealroom-reports links {banned}"
        );
    }
    assert!(
        cli.iter().any(|p| p.starts_with("ureq ")),
        "the check is meaningful"
    );
    let linked_node = dependency_set("sealroom-node", "normal,no-proc-macro").len();
    let linked_cli = dependency_set("sealroom", "normal,no-proc-macro").len();
    eprintln!(
        "crates (cargo tree -e normal): sealroom-node {} vs sealroom {} ({:.0}%); \
         without proc-macros: {linked_node} vs {linked_cli}",
        node.len(),
        cli.len(),
        100.0 * node.len() as f64 / cli.len() as f64
    );
    assert!(
        node.len() < cli.len(),
        "sealroom-node {} crates, sealroom {}",
        node.len(),
        cli.len()
    );
}

/// An installed `sealroom` without `sealroom-node` beside it: `node run`,
/// `run` and `engine measure` exit 2 saying how to build the node (nothing
/// is built when cargo did not start the process).
#[test]
fn a_missing_node_binary_is_exit_2_saying_how_to_build_it() {
    let dir = tempfile::tempdir().unwrap();
    let lonely = dir
        .path()
        .join(format!("sealroom{}", std::env::consts::EXE_SUFFIX));
    if std::fs::hard_link(env!("CARGO_BIN_EXE_sealroom"), &lonely).is_err() {
        std::fs::copy(env!("CARGO_BIN_EXE_sealroom"), &lonely).unwrap();
    }
    let scenario = repo().join("scenarios/breast-cancer-3-hospitals.toml");
    let out = dir.path().join("run");
    for args in [
        vec![
            "node",
            "run",
            "--coordinator",
            "http://127.0.0.1:9",
            "--tee",
            "sim",
        ],
        vec![
            "run",
            scenario.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        vec!["engine", "measure"],
    ] {
        let o = Command::new(&lonely)
            .args(&args)
            .env_remove("CARGO")
            .env_remove("CARGO_MANIFEST_DIR")
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(e.contains("sealroom-node"), "{args:?}: {e}");
        assert!(
            e.contains("cargo build --release -p sealroom-node"),
            "{args:?}: {e}"
        );
    }
    assert!(!out.exists(), "the run started without a node");
}

/// Bad input that `sealroom run` can only know from outside the scenario
/// file (a chain that needs the operator's key, an identity that is only a
/// public half) is exit 2 naming what to set, before the run directory or
/// anything else is made.
#[test]
fn run_refuses_a_keyless_chain_and_a_public_identity_before_making_anything() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = repo().join("scenarios/breast-cancer-3-hospitals.toml");
    let run_in_dir = |args: &[&str], key: Option<&str>| -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_sealroom"));
        c.args(args).current_dir(dir.path());
        match key {
            Some(k) => c.env("SEALROOM_CHAIN_KEY", k),
            None => c.env_remove("SEALROOM_CHAIN_KEY"),
        };
        c.output().unwrap()
    };
    let sc = scenario.to_str().unwrap();
    for (chain, key, needle) in [
        ("http://127.0.0.1:9", None, "SEALROOM_CHAIN_KEY"),
        ("opbnb-testnet", None, "--chain-key-file"),
        (
            "http://127.0.0.1:9",
            Some("not a key"),
            "SEALROOM_CHAIN_KEY",
        ),
    ] {
        let o = run_in_dir(&["run", sc, "--chain", chain], key);
        assert_eq!(o.status.code(), Some(2), "{chain}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{chain}: {}", stderr(&o));
        assert!(
            !dir.path().join("runs").exists(),
            "{chain}: a run directory was made"
        );
    }
    // A party's identity given as its public half: `run` acts as the
    // party and needs the secret.
    let id = dir.path().join("id.json");
    assert!(sealroom(&["keygen", "--out", id.to_str().unwrap()])
        .status
        .success());
    let o = sealroom(&["keygen", "--public", "--out", id.to_str().unwrap()]);
    let public = dir.path().join("id.pub.json");
    std::fs::write(&public, &o.stdout).unwrap();
    let p = scenario_variant(dir.path(), "public-key.toml", |t| {
        t.replace(
            "hospital-b.csv\"\n",
            &format!("hospital-b.csv\"\nkey = \"{}\"\n", public.display()),
        )
    });
    let o = run_in_dir(&["run", p.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("party[1].key") && stderr(&o).contains("secret identity"),
        "{}",
        stderr(&o)
    );
    assert!(
        !dir.path().join("runs").exists(),
        "a run directory was made"
    );
}

/// `sealroom node …` passes its arguments through to `sealroom-node` and
/// its exit code back (2 for an unknown --tee, naming the flag).
#[test]
fn node_run_passes_arguments_and_exit_codes_through() {
    let o = sealroom(&[
        "node",
        "run",
        "--coordinator",
        "http://127.0.0.1:9",
        "--tee",
        "sgx",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--tee"), "{}", stderr(&o));
    let o = sealroom(&["node", "run", "--help"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let help = String::from_utf8_lossy(&o.stdout);
    for flag in [
        "--coordinator",
        "--tee",
        "--gpu",
        "--session",
        "--collateral",
        "--timeout-s",
    ] {
        assert!(help.contains(flag), "{flag} missing from\n{help}");
    }
    let o = sealroom(&[
        "node",
        "run",
        "--coordinator",
        "http://127.0.0.1:9",
        "--tee",
        "sim",
        "--session",
        &format!("0x{}", "11".repeat(32)),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
}

/// Started by cargo (`cargo run --release -- run …` on a fresh clone, where
/// cargo built only `sealroom`), a missing node is built once with the same
/// profile into the same target directory. A stand-in `cargo` records the
/// call and puts the real node in place.
#[cfg(unix)]
#[test]
fn under_cargo_a_missing_node_is_built_with_the_same_profile_and_target_dir() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("target");
    let out_dir = target.join("debug");
    std::fs::create_dir_all(&out_dir).unwrap();
    let lonely = out_dir.join("sealroom");
    if std::fs::hard_link(env!("CARGO_BIN_EXE_sealroom"), &lonely).is_err() {
        std::fs::copy(env!("CARGO_BIN_EXE_sealroom"), &lonely).unwrap();
    }
    let real_node = Path::new(env!("CARGO_BIN_EXE_sealroom")).with_file_name("sealroom-node");
    let log = dir.path().join("cargo.log");
    let fake = dir.path().join("fake-cargo");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\necho \"$@\" > '{log}'\necho \"$CARGO_TARGET_DIR\" >> '{log}'\nln '{node}' \"$CARGO_TARGET_DIR/debug/sealroom-node\" || cp '{node}' \"$CARGO_TARGET_DIR/debug/sealroom-node\"\n",
            log = log.display(),
            node = real_node.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let o = Command::new(&lonely)
        .args([
            "node",
            "run",
            "--coordinator",
            "http://127.0.0.1:9",
            "--tee",
            "sgx",
        ])
        .env("CARGO", &fake)
        .env("CARGO_MANIFEST_DIR", repo())
        .output()
        .unwrap();
    // The node ran (its own usage error), after the build.
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--tee"), "{}", stderr(&o));
    assert!(stderr(&o).contains("building it"), "{}", stderr(&o));
    let called = std::fs::read_to_string(&log).unwrap();
    let mut lines = called.lines();
    assert_eq!(
        lines.next().unwrap(),
        format!(
            "build --profile dev -p sealroom-node --manifest-path {}",
            repo().join("Cargo.toml").display()
        )
    );
    assert_eq!(Path::new(lines.next().unwrap()), target);
}

/// The owner builds the manifest from the parties' signed commitments and
/// public identities alone: the datasets the scenario names need not exist
/// on its machine (only `scenario check`, run by each party, opens them).
#[test]
fn owner_creates_a_session_from_commitments_and_public_keys_alone() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let shipped = repo().join("scenarios/breast-cancer-3-hospitals.toml");
    let data = repo().join("scenarios/data/breast-cancer");
    let mut args: Vec<String> = Vec::new();
    for (name, csv) in [
        ("hospital-a", "hospital-a.csv"),
        ("hospital-b", "hospital-b.csv"),
        ("hospital-c", "hospital-c.csv"),
        ("validation", "owner-validation.csv"),
    ] {
        let key = keygen(d, &format!("{name}.json"));
        let blob = d.join(format!("{name}.sealed"));
        let o = sealroom(&[
            "commit",
            data.join(csv).to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            "--blob-out",
            blob.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        args.push("--commitment".into());
        args.push(format!("{name}={}.commitment.json", blob.display()));
        if name != "validation" {
            let o = sealroom(&["keygen", "--out", key.to_str().unwrap(), "--public"]);
            assert!(o.status.success(), "{}", stderr(&o));
            let public = d.join(format!("{name}.pub.json"));
            std::fs::write(&public, &o.stdout).unwrap();
            args.push("--party-key".into());
            args.push(format!("{name}={}", public.display()));
        }
    }
    // The owner's copy of the scenario: its dataset paths lead nowhere here.
    let scenario = d.join("s.toml");
    std::fs::write(
        &scenario,
        std::fs::read_to_string(&shipped)
            .unwrap()
            .replace("data/breast-cancer/", "not-on-this-machine/"),
    )
    .unwrap();
    assert_eq!(
        check(&scenario).status.code(),
        Some(2),
        "a party's check still opens the data"
    );
    let coordinator = sealroom_coordinator::Background::start(sealroom_coordinator::Config {
        listen: "127.0.0.1:0".into(),
        data: d.join("coord"),
        chain: sealroom_coordinator::ChainSpec::Embedded(d.join("coord/chain")),
        chain_key: None,
        confirmations: None,
        contract: None,
        lease_s: sealroom_coordinator::service::DEFAULT_LEASE_S,
    })
    .unwrap();
    let url = coordinator.url();
    let owner = d.join("validation.json");
    let base = [
        "owner",
        "create",
        "--coordinator",
        &url,
        "--key",
        owner.to_str().unwrap(),
        "--scenario",
        scenario.to_str().unwrap(),
        "--json",
    ];
    let all: Vec<&str> = base
        .iter()
        .copied()
        .chain(args.iter().map(String::as_str))
        .collect();
    let o = sealroom(&all);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["session_id"].as_str().unwrap().starts_with("0x"));
    // Without a party's public identity: exit 2 naming the flag and the party.
    let c_key = args
        .iter()
        .position(|a| a.starts_with("hospital-c=") && a.ends_with(".pub.json"))
        .unwrap();
    let mut without_c: Vec<&str> = base.to_vec();
    for (i, a) in args.iter().enumerate() {
        if i != c_key && i + 1 != c_key {
            without_c.push(a);
        }
    }
    let o = sealroom(&without_c);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--party-key hospital-c"),
        "{}",
        stderr(&o)
    );
}

/// The RDP accountant against Google's `dp-accounting` (installed by the
/// test command), an independent implementation: ε and the optimal order on
/// several (σ, q, steps, δ), to 1e-6 relative; and `dp sigma` lands on the
/// target by the oracle's own count.
#[test]
fn dp_epsilon_matches_google_dp_accounting() {
    let cases: [(f64, f64, u64, f64); 6] = [
        (1.1, 0.01, 1000, 1e-5),
        (0.8, 0.05, 200, 1e-6),
        (2.0, 0.001, 10_000, 1e-5),
        (1.0, 1.0, 10, 1e-5),
        (4.0, 0.3, 50, 1e-3),
        (0.6, 0.004, 25_000, 1e-5),
    ];
    let oracle = |cases: &[(f64, f64, u64, f64)]| -> Vec<(f64, u64)> {
        let script = format!(
            "import json, dp_accounting\nfrom dp_accounting import rdp\nout = []\nfor s, q, t, d in {}:\n    a = rdp.RdpAccountant(orders=list(range(2, 257)))\n    a.compose(dp_accounting.SelfComposedDpEvent(dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(s)), t))\n    e, o = a.get_epsilon_and_optimal_order(d)\n    out.append([float(e), int(o)])\nprint(json.dumps(out))\n",
            serde_json::to_string(
                &cases
                    .iter()
                    .map(|c| serde_json::json!([c.0, c.1, c.2, c.3]))
                    .collect::<Vec<_>>()
            )
            .unwrap()
        );
        let o = Command::new("python3")
            .args(["-c", &script])
            .output()
            .expect("python3 is needed by this test (scripts/test installs dp-accounting)");
        assert!(
            o.status.success(),
            "the oracle failed (is dp-accounting installed? scripts/test installs it): {}",
            String::from_utf8_lossy(&o.stderr)
        );
        serde_json::from_slice::<Vec<(f64, u64)>>(&o.stdout).unwrap()
    };
    let expected = oracle(&cases);
    for (c, (eps, order)) in cases.iter().zip(&expected) {
        let o = sealroom(&[
            "dp",
            "epsilon",
            &format!("--noise-multiplier={}", c.0),
            &format!("--sample-rate={}", c.1),
            &format!("--steps={}", c.2),
            &format!("--delta={}", c.3),
            "--json",
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let got = v["epsilon"].as_f64().unwrap();
        assert!(
            (got - eps).abs() <= 1e-6 * eps.abs().max(1e-12),
            "{c:?}: sealroom {got}, dp-accounting {eps}"
        );
        assert_eq!(v["order"].as_u64().unwrap(), *order, "{c:?}");
        assert_eq!(v["accountant"], "rdp");
        assert_eq!(v["orders"], "2..=256");
    }
    // σ for a target ε: the oracle agrees it meets the target, tightly.
    let o = sealroom(&[
        "dp",
        "sigma",
        "--target-epsilon=2.0",
        "--sample-rate=0.02",
        "--steps=500",
        "--delta=1e-5",
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let sigma = v["noise_multiplier"].as_f64().unwrap();
    let (eps, _) = oracle(&[(sigma, 0.02, 500, 1e-5)])[0];
    assert!(
        eps <= 2.0 * (1.0 + 1e-6) && eps > 2.0 * (1.0 - 1e-4),
        "σ {sigma} gives ε {eps}"
    );
    // Bad parameters name their flag, exit 2.
    for (args, flag) in [
        (
            [
                "--noise-multiplier=0",
                "--sample-rate=0.1",
                "--steps=1",
                "--delta=1e-5",
            ],
            "--noise-multiplier",
        ),
        (
            [
                "--noise-multiplier=1",
                "--sample-rate=1.5",
                "--steps=1",
                "--delta=1e-5",
            ],
            "--sample-rate",
        ),
        (
            [
                "--noise-multiplier=1",
                "--sample-rate=0.1",
                "--steps=0",
                "--delta=1e-5",
            ],
            "--steps",
        ),
        (
            [
                "--noise-multiplier=1",
                "--sample-rate=0.1",
                "--steps=1",
                "--delta=1",
            ],
            "--delta",
        ),
    ] {
        let mut a = vec!["dp", "epsilon"];
        a.extend(args);
        let o = sealroom(&a);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(flag),
            "{args:?}"
        );
    }
    // A negative value is read as a value and refused by name, not
    // mistaken for an unknown flag.
    let o = sealroom(&[
        "dp",
        "epsilon",
        "--noise-multiplier",
        "-1",
        "--sample-rate",
        "0.1",
        "--steps",
        "1",
        "--delta",
        "1e-5",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("--noise-multiplier: -1: must be"), "{e}");
}

/// A small model trained in-process under the shipped breast-cancer spec
/// (two epochs: the spec's architecture, not its quality, matters here).
fn small_breast_cancer_model(dir: &Path) -> PathBuf {
    use sealroom_trainer::ml::{self, Dataset};
    let mut s = sealroom_protocol::scenario::Scenario::load(
        &repo().join("scenarios/breast-cancer-3-hospitals.toml"),
    )
    .unwrap();
    s.training.epochs = 2;
    let read =
        |p: &Path| Dataset::from_csv(&std::fs::read(s.resolve(p)).unwrap(), &s.schema).unwrap();
    let train = read(&s.parties[0].dataset);
    let val = read(s.owner.validation.as_ref().unwrap());
    let m = ml::train(
        &s.model,
        &s.training,
        &s.schema,
        &train,
        Some(&val),
        &mut |_| std::ops::ControlFlow::Continue(()),
    )
    .unwrap();
    let p = dir.join("model.bin");
    std::fs::write(&p, &m.model_bytes).unwrap();
    p
}

#[test]
fn model_eval_and_predict_refuse_bad_input_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let model = small_breast_cancer_model(dir.path());
    let m = model.to_str().unwrap();
    let scenario = repo().join("scenarios/breast-cancer-3-hospitals.toml");
    let sc = scenario.to_str().unwrap();
    let csv = repo().join("scenarios/data/breast-cancer/owner-validation.csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    let variant = |name: &str, edit: &dyn Fn(&str) -> String| {
        let p = dir.path().join(name);
        std::fs::write(&p, edit(&text)).unwrap();
        p.display().to_string()
    };
    let fails = |args: &[&str], needles: &[&str]| {
        let o = sealroom(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        for n in needles {
            assert!(
                stderr(&o).contains(n),
                "{args:?}: `{n}` not in {}",
                stderr(&o)
            );
        }
        assert!(o.stdout.is_empty(), "{args:?} printed on stdout");
    };

    // It works on the scenario's CSV: `accuracy 0.xxx (k/n correct)`.
    let o = sealroom(&[
        "model",
        "eval",
        m,
        "--data",
        csv.to_str().unwrap(),
        "--scenario",
        sc,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.starts_with("accuracy 0.") && out.contains("/113 correct)"),
        "{out}"
    );

    // Extra columns are ignored; predict needs no label column.
    let extra = variant("extra.csv", &|t| {
        t.lines()
            .enumerate()
            .map(|(i, l)| {
                if i == 0 {
                    format!("id,{l}\n")
                } else {
                    format!("r{i},{l}\n")
                }
            })
            .collect()
    });
    let o = sealroom(&[
        "model",
        "eval",
        m,
        "--data",
        &extra,
        "--scenario",
        sc,
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let no_label = variant("no-label.csv", &|t| {
        t.lines()
            .map(|l| l.rsplit_once(',').unwrap().0.to_string() + "\n")
            .collect()
    });
    assert!(
        text.starts_with("mean_radius") && text.lines().next().unwrap().ends_with(",diagnosis")
    );
    let o = sealroom(&["model", "predict", m, "--data", &no_label, "--scenario", sc]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 114);

    // Wrong columns: exit 2 naming the file and the column.
    let renamed = variant("renamed.csv", &|t| {
        t.replacen("worst_area", "worst_aera", 1)
    });
    for cmd in ["eval", "predict"] {
        fails(
            &["model", cmd, m, "--data", &renamed, "--scenario", sc],
            &["--data", "renamed.csv", "`worst_area`", "missing"],
        );
    }
    fails(
        &["model", "eval", m, "--data", &no_label, "--scenario", sc],
        &["no-label.csv", "`diagnosis`"],
    );
    let bad_value = variant("bad-value.csv", &|t| t.replacen("\n1", "\nx", 1));
    fails(
        &[
            "model",
            "predict",
            m,
            "--data",
            &bad_value,
            "--scenario",
            sc,
        ],
        &["bad-value.csv", "line 2", "`mean_radius`"],
    );

    // Not a model: a CSV, a truncated model, a sealed model, a missing file.
    let truncated = dir.path().join("truncated.bin");
    let bytes = std::fs::read(&model).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() - 10]).unwrap();
    let sealed = dir.path().join("model.sealed");
    std::fs::write(&sealed, b"SRMODEL1\x00\x00\x00\x02{}").unwrap();
    let csv_s = csv.display().to_string();
    for (not_model, says) in [
        (csv_s.as_str(), "not a usable sealroom model"),
        (truncated.to_str().unwrap(), "not a usable sealroom model"),
        (sealed.to_str().unwrap(), "owner open-model"),
        ("/nonexistent/model.bin", "No such file"),
    ] {
        for cmd in ["eval", "predict"] {
            fails(
                &["model", cmd, not_model, "--data", &csv_s, "--scenario", sc],
                &[not_model, says],
            );
        }
    }

    // Names: none given, a scenario of another model, a record directory
    // without this model.
    fails(
        &["model", "predict", m, "--data", &csv_s],
        &["--scenario", "--record"],
    );
    let digits = repo().join("scenarios/digits-3-labs.toml");
    fails(
        &[
            "model",
            "eval",
            m,
            "--data",
            &csv_s,
            "--scenario",
            digits.to_str().unwrap(),
        ],
        &[
            "--scenario",
            "digits-3-labs.toml",
            "mlp 64 → 128 → 10",
            "logistic-regression 30 → 2",
        ],
    );
    let empty = dir.path().join("records");
    std::fs::create_dir(&empty).unwrap();
    fails(
        &[
            "model",
            "eval",
            m,
            "--data",
            &csv_s,
            "--record",
            empty.to_str().unwrap(),
        ],
        &["--record", "no record"],
    );

    // Export writes nothing when its input is bad.
    let out = dir.path().join("export");
    let o_s = out.to_str().unwrap();
    fails(
        &["model", "export", &csv_s, "--out", o_s],
        &["not a usable sealroom model"],
    );
    fails(
        &["model", "export", m, "--out", o_s, "--report-hash", "0x12"],
        &["--report-hash"],
    );
    fails(&["model", "export", m, "--out", &csv_s], &["--out"]);
    assert!(!out.exists());
    // Without names the card still says everything but the column names.
    let o = sealroom(&["model", "export", m, "--out", o_s, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let card: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("model-card.json")).unwrap()).unwrap();
    assert_eq!(card["features"], serde_json::Value::Null);
    assert_eq!(card["architecture"]["inputs"], 30);
    assert_eq!(card["layers"][0]["name"], "layers.0");
    assert_eq!(card["label_classes"], serde_json::json!([0, 1]));
}

#[test]
fn an_output_over_an_input_is_refused_naming_both_flags() {
    // Checked before any file is read or any request sent: the files
    // need not be valid, and the coordinator need not exist.
    let dir = tempfile::tempdir().unwrap();
    let k = keygen(dir.path(), "owner.json");
    let key_before = std::fs::read(&k).unwrap();
    let file = |name: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, b"not what it claims\n").unwrap();
        p.to_str().unwrap().to_string()
    };
    let (sealed, bundle) = (file("model.sealed"), file("bundle.json"));
    let key = k.to_str().unwrap().to_string();
    let sid = format!("0x{}", "11".repeat(32));
    let cases: Vec<(Vec<&str>, [&str; 2])> = vec![
        (
            vec!["owner", "open-model", &sealed, "--key", &key, "--out", &key],
            ["--key", "--out"],
        ),
        (
            vec![
                "owner",
                "open-model",
                &sealed,
                "--key",
                &key,
                "--out",
                &sealed,
            ],
            ["SEALED", "--out"],
        ),
        (
            vec![
                "owner",
                "fetch-model",
                "--coordinator",
                "http://127.0.0.1:9",
                "--session",
                &sid,
                "--key",
                &key,
                "--out",
                "m.bin",
                "--sealed-out",
                &key,
            ],
            ["--key", "--sealed-out"],
        ),
        (
            vec![
                "report", "prove", "--bundle", &bundle, "--party", "a", "--out", &bundle,
            ],
            ["--bundle", "--out"],
        ),
        (
            vec!["report", "verify", &bundle, "--html", &bundle],
            ["BUNDLE", "--html"],
        ),
        (
            vec![
                "chain",
                "publish-batch",
                &sealed,
                &bundle,
                "--out",
                &bundle,
                "--contract",
                "0x0000000000000000000000000000000000000001",
                "--chain",
                "anvil",
            ],
            ["BUNDLES", "--out"],
        ),
    ];
    for (argv, flags) in cases {
        let o = sealroom(&argv);
        assert_eq!(o.status.code(), Some(2), "{argv:?}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(
            e.contains(flags[0]) && e.contains(flags[1]) && e.contains("same file"),
            "{argv:?}: {e}"
        );
    }
    assert_eq!(std::fs::read(&k).unwrap(), key_before);
    assert_eq!(std::fs::read(&sealed).unwrap(), b"not what it claims\n");
    assert_eq!(std::fs::read(&bundle).unwrap(), b"not what it claims\n");
}

/// Flag values that would overflow a clock, and outputs that cannot be
/// placed, are input mistakes (exit 2, naming the flag or file) found
/// before anything is sent or written; a model export leaves no half of
/// its pair behind.
#[test]
fn overflowing_flags_and_unplaceable_outputs_are_exit_2_with_nothing_written() {
    let dir = tempfile::tempdir().unwrap();
    let k = keygen(dir.path(), "me.json");
    let key = k.to_str().unwrap().to_string();
    let sid = format!("0x{}", "11".repeat(32));
    let nowhere = "http://127.0.0.1:9";
    let report_data = "00".repeat(64);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "party",
                "agent",
                "--coordinator",
                nowhere,
                "--key",
                &key,
                "--session",
                &sid,
                "--poll-s",
                "1e20",
            ],
            "--poll-s",
        ),
        (
            vec![
                "node",
                "serve",
                "--coordinator",
                nowhere,
                "--tee",
                "sim",
                "--poll-s",
                "1e20",
            ],
            "--poll-s",
        ),
        (
            vec![
                "node",
                "run",
                "--coordinator",
                nowhere,
                "--tee",
                "sim",
                "--timeout-s",
                "18446744073709551615",
            ],
            "--timeout-s",
        ),
        (
            vec![
                "attest",
                "simulate",
                "--report-data",
                &report_data,
                "--out",
                "/nonexistent-dir/evidence.bin",
            ],
            "--out",
        ),
    ];
    for (argv, flag) in cases {
        let o = sealroom(&argv);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{argv:?}: {e}");
        assert!(e.contains(flag), "{argv:?}: {e}");
        assert!(!e.contains("panicked"), "{argv:?}: {e}");
    }

    // report check-proof names --root, or the proof file.
    let proof = dir.path().join("proof.json");
    std::fs::write(&proof, br#"{"value": ["9"], "proof": []}"#).unwrap();
    let p = proof.to_str().unwrap();
    let o = sealroom(&["report", "check-proof", p, "--root", "xyz"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--root xyz"), "{}", stderr(&o));
    let o = sealroom(&["report", "check-proof", p]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains(p), "{}", stderr(&o));

    // model export: a directory where the card goes is refused before the
    // weights are written; an export over its own input is refused.
    let model = small_breast_cancer_model(dir.path());
    let out = dir.path().join("export");
    std::fs::create_dir_all(out.join("model-card.json")).unwrap();
    let o = sealroom(&[
        "model",
        "export",
        model.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("is a directory"), "{}", stderr(&o));
    assert!(!out.join("model.safetensors").exists());
    let own = dir.path().join("own");
    std::fs::create_dir_all(&own).unwrap();
    std::fs::copy(&model, own.join("model.safetensors")).unwrap();
    let before = std::fs::read(own.join("model.safetensors")).unwrap();
    let o = sealroom(&[
        "model",
        "export",
        own.join("model.safetensors").to_str().unwrap(),
        "--out",
        own.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("same file"), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(own.join("model.safetensors")).unwrap(),
        before
    );
}
