//! The node binary's own command line, offline: usage errors are exit 2
//! naming the flag, an unreachable coordinator is exit 1.
//!
//! Also the reason `cargo test --workspace` builds `target/*/sealroom-node`
//! beside `sealroom`: cargo builds a package's binaries for its integration
//! tests, and the root crate's tests run `sealroom node run`, which executes
//! that binary.

use std::process::{Command, Output};

fn node(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sealroom-node"))
        .args(args)
        .output()
        .expect("run sealroom-node")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn unknown_tee_is_exit_2_naming_the_flag() {
    let o = node(&["run", "--coordinator", "http://127.0.0.1:9", "--tee", "sgx"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--tee"), "{}", stderr(&o));
}

#[cfg(not(feature = "tee"))]
#[test]
fn hardware_tee_without_the_feature_is_exit_2_saying_how_to_build() {
    for tee in ["sev-snp", "tdx"] {
        let o = node(&["run", "--coordinator", "http://127.0.0.1:9", "--tee", tee]);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        let e = stderr(&o);
        assert!(e.contains(&format!("--tee {tee}")), "{e}");
        assert!(e.contains("--features tee"), "{e}");
    }
}

#[test]
fn bad_session_and_gpu_are_exit_2_before_any_network_call() {
    for (extra, named) in [
        (&["--session", "nothex"][..], "--session nothex"),
        (&["--gpu", "nvidia"][..], "--gpu nvidia"),
        (
            &["--collateral", "/nonexistent/collateral.json"][..],
            "--collateral",
        ),
    ] {
        let mut args = vec!["run", "--coordinator", "http://127.0.0.1:9", "--tee", "sim"];
        args.extend_from_slice(extra);
        let o = node(&args);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(stderr(&o).contains(named), "{}", stderr(&o));
    }
}

#[test]
fn unreachable_coordinator_is_exit_1() {
    let o = node(&[
        "run",
        "--coordinator",
        "http://127.0.0.1:9",
        "--tee",
        "sim",
        "--session",
        &format!("0x{}", "11".repeat(32)),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("unreachable"), "{}", stderr(&o));
}

#[test]
fn the_measurement_is_this_binary_s_sha256() {
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_sealroom-node"));
    let m = sealroom_node::measure_file(exe).unwrap();
    let bytes = std::fs::read(exe).unwrap();
    use sha2::Digest;
    assert_eq!(m, <[u8; 32]>::from(sha2::Sha256::digest(&bytes)));
    assert_eq!(
        sealroom_node::path_in(exe.parent().unwrap()),
        exe.to_path_buf()
    );
}
