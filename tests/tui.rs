//! End to end: `sealroom tui` driven through tmux for one hospital (consent,
//! blob upload, grant after its own verification of the node, bundle export),
//! while the other members and a sim node use the CLI against a real
//! coordinator process. The screen is read with `capture-pane` until the
//! session's reports appear, then the coordinator is restarted to check the
//! TUI reconnects by itself.
//!
//! Needs tmux (scripts/test installs it). Without it the test fails with a
//! message saying so: a skipped UI test would pass CI without testing anything.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_sealroom");

fn scenarios() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

/// Runs the CLI and returns stdout; panics with stderr on failure.
fn cli(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().expect("run sealroom");
    assert!(
        out.status.success(),
        "sealroom {}: {}\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A child process killed when the test ends, however it ends.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn coordinator(data: &Path, listen: &str) -> (Proc, String) {
    let mut child = Command::new(BIN)
        .args(["coordinator", "serve", "--listen", listen, "--data"])
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the coordinator");
    let stdout = child.stdout.take().expect("coordinator stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read the coordinator's first line");
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    (Proc(child), url.to_string())
}

/// A tmux server of our own (its own socket), killed at the end.
struct Tmux {
    socket: String,
    target: &'static str,
}

impl Tmux {
    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket]);
        c
    }

    fn start(command: &str) -> Self {
        Self::start_as("tui", command)
    }

    /// Another TUI in its own tmux session on the same server.
    fn start_as(target: &'static str, command: &str) -> Self {
        match Command::new("tmux").arg("-V").output() {
            Ok(o) if o.status.success() => {}
            _ => panic!(
                "tmux is required by tests/tui.rs (it drives `sealroom tui` in a terminal) and was not found on PATH; \
                 install it (apt-get install tmux; scripts/test does this) and run again"
            ),
        }
        let t = Tmux {
            socket: format!("sealroom-tui-test-{}", std::process::id()),
            target,
        };
        let out = t
            .cmd()
            .args([
                "new-session",
                "-d",
                "-s",
                target,
                "-x",
                "100",
                "-y",
                "30",
                command,
            ])
            .env("TERM", "xterm-256color")
            .env_remove("NO_COLOR")
            .output()
            .expect("tmux new-session");
        assert!(
            out.status.success(),
            "tmux new-session failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        t
    }

    fn keys(&self, keys: &[&str]) {
        let st = self
            .cmd()
            .args(["send-keys", "-t", self.target])
            .args(keys)
            .status()
            .expect("tmux send-keys");
        assert!(st.success());
    }

    fn type_text(&self, text: &str) {
        let st = self
            .cmd()
            .args(["send-keys", "-t", self.target, "-l", text])
            .status()
            .expect("tmux send-keys -l");
        assert!(st.success());
    }

    fn screen(&self) -> String {
        let out = self
            .cmd()
            .args(["capture-pane", "-p", "-t", self.target])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until `ok(screen)`; panics with the screen after `secs`.
    fn wait_until(&self, what: &str, secs: u64, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            if Instant::now() > deadline {
                panic!("waited {secs}s for {what}; the screen shows:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until every needle is on screen; panics with the screen after `secs`.
    fn wait_for(&self, needles: &[&str], secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.screen();
            if needles.iter().all(|n| s.contains(n)) {
                return s;
            }
            if Instant::now() > deadline {
                panic!("waited {secs}s for {needles:?}; the screen shows:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // The server exits by itself once its last session is gone.
        let _ = self
            .cmd()
            .args(["kill-session", "-t", self.target])
            .status();
    }
}

#[test]
fn a_party_consents_uploads_and_grants_from_the_tui_until_reports_appear() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = |name: &str| d.join(name).display().to_string();
    let data = scenarios().join("data/breast-cancer");

    // Identities, public halves, commitments (blobs and self-sealed data keys).
    for n in ["hospital-a", "hospital-b", "hospital-c", "owner"] {
        cli(&["keygen", "--out", &p(&format!("{n}.key"))]);
        std::fs::write(
            d.join(format!("{n}.pub")),
            cli(&["keygen", "--out", &p(&format!("{n}.key")), "--public"]),
        )
        .unwrap();
    }
    for (n, csv) in [
        ("hospital-a", "hospital-a.csv"),
        ("hospital-b", "hospital-b.csv"),
        ("hospital-c", "hospital-c.csv"),
        ("owner", "owner-validation.csv"),
    ] {
        cli(&[
            "commit",
            &data.join(csv).display().to_string(),
            "--key",
            &p(&format!("{n}.key")),
            "--blob-out",
            &p(&format!("{n}.sealed")),
            "--json",
        ]);
    }
    // The shipped scenario, with absolute data paths and the parties' public keys.
    let mut text =
        std::fs::read_to_string(scenarios().join("breast-cancer-3-hospitals.toml")).unwrap();
    text = text.replace("\"data/", &format!("\"{}/data/", scenarios().display()));
    for n in ["hospital-a", "hospital-b", "hospital-c"] {
        text = text.replace(
            &format!("name = \"{n}\"\n"),
            &format!("name = \"{n}\"\nkey = \"{}\"\n", p(&format!("{n}.pub"))),
        );
    }
    std::fs::write(d.join("scenario.toml"), text).unwrap();

    let coord_data = d.join("coord");
    let (coord, url) = coordinator(&coord_data, "127.0.0.1:0");
    let created = cli(&[
        "owner",
        "create",
        "--coordinator",
        &url,
        "--key",
        &p("owner.key"),
        "--scenario",
        &p("scenario.toml"),
        "--commitment",
        &format!("hospital-a={}", p("hospital-a.sealed.commitment.json")),
        "--commitment",
        &format!("hospital-b={}", p("hospital-b.sealed.commitment.json")),
        "--commitment",
        &format!("hospital-c={}", p("hospital-c.sealed.commitment.json")),
        "--commitment",
        &format!("validation={}", p("owner.sealed.commitment.json")),
        "--json",
    ]);
    let created: serde_json::Value = serde_json::from_str(&created).unwrap();
    let sid = created["session_id"].as_str().unwrap().to_string();
    let manifest_hash = created["manifest_hash"].as_str().unwrap().to_string();

    // hospital-a works from the TUI.
    let tmux = Tmux::start(&format!(
        "{BIN} tui --coordinator {url} --key {}",
        p("hospital-a.key")
    ));
    tmux.wait_for(
        &[
            "Sessions",
            "breast-cancer-3-hospitals",
            "open",
            "0/4",
            "party hospital-a",
        ],
        60,
    );
    tmux.keys(&["Enter"]);
    tmux.wait_for(
        &[
            "1 Overview",
            "press c to review the manifest hash and consent",
            &manifest_hash,
        ],
        30,
    );

    // Consent: the dialog shows the manifest hash that is signed.
    tmux.keys(&["c"]);
    tmux.wait_for(
        &[
            "Confirm: exactly what will be signed and sent",
            "CONSENT",
            &format!("manifest  {manifest_hash}"),
        ],
        10,
    );
    tmux.keys(&["y"]);
    tmux.wait_for(
        &[
            &format!("consented over manifest {manifest_hash}"),
            "press u to upload",
        ],
        30,
    );

    // Upload the blob.
    tmux.keys(&["u"]);
    tmux.wait_for(&["Upload my encrypted blob"], 10);
    tmux.type_text(&p("hospital-a.sealed"));
    tmux.keys(&["Enter"]);
    // The dialog shows the file's own length and hash beside the manifest's
    // once the TUI has read it; y sends only then.
    tmux.wait_for(
        &[
            "UPLOAD my encrypted blob",
            "input     hospital-a",
            "this file",
            "MATCH the manifest's commitment",
        ],
        30,
    );
    tmux.keys(&["y"]);
    tmux.wait_for(&["uploaded", "as hospital-a"], 60);

    // Grant is refused while no node is registered.
    tmux.keys(&["3"]);
    tmux.wait_for(&["No node has registered yet."], 10);
    tmux.keys(&["g"]);
    tmux.wait_for(&["grant disabled: no node has registered yet"], 10);

    // A sim node registers; the TUI shows my own verdict.
    let _node = Proc(
        Command::new(BIN)
            .args([
                "node",
                "run",
                "--coordinator",
                &url,
                "--tee",
                "sim",
                "--session",
                &sid,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the node"),
    );
    tmux.wait_for(
        &[
            "insecure-simulation",
            "MY VERDICT  VERIFIED",
            "enabled: press g",
        ],
        90,
    );

    // Grant: the prompt suggests the uploaded blob's data key.
    tmux.keys(&["g"]);
    tmux.wait_for(&[&format!("> {}.datakey", p("hospital-a.sealed"))], 10);
    tmux.keys(&["Enter"]);
    tmux.wait_for(
        &["GRANT my data key", "node key", "INSECURE-SIMULATION"],
        10,
    );
    tmux.keys(&["y"]);
    tmux.wait_for(&["data key for hospital-a granted to node"], 60);
    // The TUI keeps the member's record where the CLI does (beside the key):
    // the consented manifest and the node granted to.
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(d.join(format!("hospital-a.key.sessions/{sid}.json")))
            .expect("the TUI wrote hospital-a's record beside its key"),
    )
    .unwrap();
    assert_eq!(record["manifest_hash"], manifest_hash.as_str());
    assert_eq!(record["consent"]["action"], "consent");
    assert!(record["grant"]["node_key"].is_string(), "{record}");
    // …and the CLI checks the same record (status refuses a changed manifest).
    cli(&[
        "party",
        "status",
        "--coordinator",
        &url,
        "--key",
        &p("hospital-a.key"),
        "--session",
        &sid,
    ]);

    // The others, by the CLI.
    for (n, blob) in [
        ("hospital-b", "hospital-b"),
        ("hospital-c", "hospital-c"),
        ("owner", "owner"),
    ] {
        let common = [
            "--coordinator",
            &url,
            "--key",
            &p(&format!("{n}.key")),
            "--session",
            &sid,
        ];
        cli(&[&["party", "consent"][..], &common[..]].concat());
        let blob_path = p(&format!("{blob}.sealed"));
        cli(&[
            &["party", "commit"][..],
            &common[..],
            &["--blob", &blob_path][..],
        ]
        .concat());
        let key_path = format!("{blob_path}.datakey");
        cli(&[
            &["party", "grant"][..],
            &common[..],
            &["--data-key", &key_path][..],
        ]
        .concat());
    }

    // Reports appear, published, and the public verifier passes on them.
    tmux.keys(&["4"]);
    let s = tmux.wait_for(
        &[
            "opened",
            "completed",
            "VERIFIED outcome completed",
            "published",
        ],
        240,
    );
    assert!(
        s.contains("  tx      0x"),
        "no transaction hash on screen:\n{s}"
    );
    assert!(!s.contains("pending publication"), "{s}");

    // Members: everyone ready.
    tmux.keys(&["2"]);
    let s = tmux.wait_for(&["Member", "hospital-a", "oncology-model-owner"], 10);
    let a = s.lines().find(|l| l.contains("hospital-a")).unwrap();
    assert_eq!(a.matches("yes").count(), 3, "{a}");

    // Export the offline bundle; the public verifier accepts it.
    tmux.keys(&["e"]);
    tmux.wait_for(&["Export the offline bundle"], 10);
    tmux.keys(&["C-u"]);
    tmux.type_text(&p("bundle.json"));
    tmux.keys(&["Enter"]);
    tmux.wait_for(&["EXPORT the offline bundle"], 10);
    tmux.keys(&["y"]);
    tmux.wait_for(&["bundle (2 report(s)) written to"], 30);
    let v = cli(&["report", "verify", &p("bundle.json"), "--json"]);
    let v: serde_json::Value = serde_json::from_str(&v).unwrap();
    assert_eq!(v["verified"], true, "{v}");

    // A coordinator restart shows as unreachable, then heals by itself.
    let listen = url.trim_start_matches("http://").to_string();
    drop(coord);
    tmux.wait_for(&["unreachable"], 30);
    let (_coord, url2) = coordinator(&coord_data, &listen);
    assert_eq!(url2, url);
    tmux.keys(&["4"]);
    tmux.wait_until("the header to say live again", 60, |s| {
        header(s).ends_with(" live") && s.contains("VERIFIED outcome completed")
    });

    // The owner fetches and opens the model from its own TUI (started before
    // hospital-a quits, so the tmux server stays up between the two).
    let owner = Tmux::start_as(
        "owner",
        &format!("{BIN} tui --coordinator {url} --key {}", p("owner.key")),
    );
    tmux.keys(&["q"]);
    owner.wait_for(&["breast-cancer-3-hospitals", "published", "owner"], 60);
    owner.keys(&["Enter"]);
    owner.wait_for(&["press m to fetch and open the model"], 30);
    owner.keys(&["m"]);
    owner.wait_for(&["Fetch and open the model: write it to"], 10);
    owner.keys(&["C-u"]);
    owner.type_text(&p("model.bin"));
    owner.keys(&["Enter"]);
    owner.wait_for(
        &[
            "FETCH the sealed model and open it with my key",
            "(mode 0600)",
        ],
        10,
    );
    owner.keys(&["y"]);
    owner.wait_for(&["model", "bytes, sha256", "written to"], 60);
    let meta = std::fs::metadata(d.join("model.bin")).expect("the opened model");
    assert!(meta.len() > 0);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }
    owner.wait_for(&["state delivered"], 30);
    owner.keys(&["q"]);
}

/// The first line of a screen (the header), without trailing blanks.
fn header(screen: &str) -> &str {
    screen.lines().next().unwrap_or_default().trim_end()
}

#[test]
fn bad_arguments_exit_2_naming_the_flag_before_touching_the_terminal() {
    let out = Command::new(BIN)
        .args([
            "tui",
            "--coordinator",
            "http://127.0.0.1:9",
            "--key",
            "/nonexistent/hospital.key",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--key /nonexistent/hospital.key"));

    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k.key");
    cli(&["keygen", "--out", &key.display().to_string()]);
    let out = Command::new(BIN)
        .args(["tui", "--coordinator", "127.0.0.1:7300", "--key"])
        .arg(&key)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--coordinator 127.0.0.1:7300"));
}
