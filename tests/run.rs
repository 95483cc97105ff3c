//! The main job end to end through the real binary: `sealroom run` on the
//! shipped scenarios (embedded chain and a real anvil), the regulator's
//! verifier on the bundle and on the chain, tampering caught by the named
//! check, inclusion proofs, and a blob corrupted at rest ending in a
//! published `aborted` report.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn sealroom(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sealroom"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run sealroom")
}

fn scenario(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name)
        .display()
        .to_string()
}

fn run_json(scenario_file: &str, out: &Path, extra: &[&str]) -> (Output, serde_json::Value) {
    let mut args = vec![
        "run",
        scenario_file,
        "--out",
        out.to_str().unwrap(),
        "--json",
    ];
    args.extend_from_slice(extra);
    let o = sealroom(&args);
    let v = serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null);
    (o, v)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn failed_check(o: &Output) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON object");
    v["failure"]["check"].clone()
}

fn verify_bundle_json(bundle: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["report", "verify", bundle.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    sealroom(&args)
}

#[test]
fn breast_cancer_run_verifies_and_tampering_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let (o, v) = run_json(&scenario("breast-cancer-3-hospitals.toml"), &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(v["verification"]["verified"], true, "{v}");
    assert_eq!(v["tee"], "sim");
    assert_eq!(v["insecure_simulation"], true);
    assert_eq!(v["chain"]["kind"], "embedded");
    assert_eq!(v["chain"]["chain_id"], 31337);
    let kinds: Vec<&str> = v["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["opened", "completed"]);
    for r in v["reports"].as_array().unwrap() {
        assert!(r["tx_hash"].as_str().unwrap().starts_with("0x"));
        assert!(r["gas_used"].as_u64().unwrap() > 21_000);
    }
    let acc = v["model"]["metrics"]["accuracy"].as_f64().unwrap();
    assert!(acc >= 0.97, "breast cancer accuracy {acc}");
    model_is_usable_outside_sealroom(&out, &v, "breast-cancer/owner-validation.csv");
    for f in [
        "bundle.json",
        "model.sealed",
        "model.bin",
        "summary.json",
        "coordinator",
        "chain",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    // The owner's model bytes hash to what the completed report published.
    let model = std::fs::read(out.join("model.bin")).unwrap();
    let sha = format!("0x{}", hex::encode(sealroom_protocol::hash::sha256(&model)));
    assert_eq!(v["model"]["sha256"], sha.as_str());

    // The regulator: from the bundle, and from the chain alone.
    let bundle = out.join("bundle.json");
    let o = verify_bundle_json(&bundle, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    // The auditor's summary, in JSON and in words, before the checklist.
    let offline: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let sum = &offline["summary"];
    assert_eq!(sum["inputs"].as_array().unwrap().len(), 4, "{sum}");
    assert_eq!(sum["inputs"][0]["name"], "hospital-a");
    assert!(sum["inputs"][0]["record_count"].as_u64().unwrap() > 0);
    assert_eq!(sum["policy"]["allow_simulation"], true);
    assert_eq!(sum["measurements"][0]["pinned"], false);
    assert!(sum["reports"][0]["signed_utc"]
        .as_str()
        .unwrap()
        .ends_with(" UTC"));
    assert_eq!(sum["reports"][0]["tx_checked"], false);
    let plain = sum["plain"].to_string();
    assert!(
        plain.contains("SIMULATED") && plain.contains("offline bundle"),
        "{plain}"
    );
    let human = sealroom(&["report", "verify", bundle.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&human.stdout);
    let at = |needle: &str| {
        text.find(needle)
            .unwrap_or_else(|| panic!("{needle} missing:\n{text}"))
    };
    assert!(
        at("SUMMARY") < at("[ ok ]"),
        "the summary comes before the checklist"
    );
    at("hospital-a");
    at("owner's validation set");
    at("NOT pinned: the policy pins no measurement");
    at("simulation ALLOWED");
    at("not checked offline");
    assert!(
        !text.contains("keccak256 of the report_data"),
        "plain words in the summary"
    );
    let session = v["session_id"].as_str().unwrap();
    let contract = v["chain"]["contract"].as_str().unwrap();
    let chain_dir = out.join("chain");
    let o = sealroom(&[
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
    assert!(
        o.status.success(),
        "{} {}",
        String::from_utf8_lossy(&o.stdout),
        stderr(&o)
    );
    let got: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(got["verified"], true);
    assert_eq!(got["policy_source"], "manifest");
    assert_eq!(
        got["summary"]["reports"][1]["tx_checked"], true,
        "read from the chain"
    );

    // Inclusion proofs: every party's proof checks; a forged root fails.
    for p in v["parties"].as_array().unwrap() {
        let proof = p["proof_path"].as_str().unwrap();
        let o = sealroom(&["report", "check-proof", proof]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let proof = v["parties"][0]["proof_path"].as_str().unwrap();
    let o = sealroom(&[
        "report",
        "check-proof",
        proof,
        "--root",
        &format!("0x{}", "ab".repeat(32)),
    ]);
    assert_eq!(o.status.code(), Some(1));

    // Tampering, each caught with exit 1 and the right check.
    let original: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&bundle).unwrap()).unwrap();
    let tampered = |name: &str, edit: &dyn Fn(&mut serde_json::Value)| -> PathBuf {
        let mut b = original.clone();
        edit(&mut b);
        let p = dir.path().join(name);
        std::fs::write(&p, serde_json::to_vec(&b).unwrap()).unwrap();
        p
    };
    // (1) one byte of the bundled completed report changed (inside its `seed` word).
    let p = tampered("byte.json", &|b| {
        let abi = b["reports"][1]["report_abi"].as_str().unwrap().to_string();
        let mut bytes = hex::decode(&abi).unwrap();
        // The 16th head word is `seed` (uint64, right-aligned).
        let i = 15 * 32 + 31;
        bytes[i] ^= 0x01;
        b["reports"][1]["report_abi"] = hex::encode(bytes).into();
    });
    let o = verify_bundle_json(&p, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(failed_check(&o), "report.signature");

    // (2) the signature swapped for another session's (a second run).
    let out2 = dir.path().join("run2");
    let (o2, v2) = run_json(&scenario("breast-cancer-3-hospitals.toml"), &out2, &[]);
    assert!(o2.status.success(), "{}", stderr(&o2));
    assert_ne!(v2["session_id"], v["session_id"]);
    let other: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out2.join("bundle.json")).unwrap()).unwrap();
    let p = tampered("sig.json", &|b| {
        b["reports"][0]["signature"] = other["reports"][0]["signature"].clone()
    });
    let o = verify_bundle_json(&p, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(failed_check(&o), "report.signature");

    // (3) the evidence replaced with evidence bound to another key (the other session's node).
    let p = tampered("evidence.json", &|b| {
        b["envelope"]["evidence"] = other["envelope"]["evidence"].clone()
    });
    let o = verify_bundle_json(&p, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(failed_check(&o), "evidence.hash");

    // (4) a policy tightened to a measurement the node lacks.
    let pol = dir.path().join("strict.toml");
    std::fs::write(
        &pol,
        format!(
            "accepted_kinds = [\"sim\"]\nallow_simulation = true\n[measurements]\nsim = [\"{}\"]\n",
            "11".repeat(32)
        ),
    )
    .unwrap();
    let o = verify_bundle_json(&bundle, &["--policy", pol.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(failed_check(&o), "evidence.verified");
    let got: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        got["failure"]["detail"]
            .as_str()
            .unwrap()
            .contains("policy.measurement"),
        "{got}"
    );
    // …and a policy without allow_simulation rejects sim evidence.
    std::fs::write(&pol, "allow_simulation = false\n").unwrap();
    let o = verify_bundle_json(&bundle, &["--policy", pol.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));

    // (5) a report hash on chain that does not match the calldata.
    let p = tampered("stored.json", &|b| {
        b["reports"][0]["stored_hash"] = format!("0x{}", "00".repeat(32)).into()
    });
    let o = verify_bundle_json(&p, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(failed_check(&o), "chain.stored-hash");

    // Bad input: exit 2 naming the file.
    let o = sealroom(&["report", "verify", "/nonexistent/bundle.json"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("/nonexistent/bundle.json"));

    let bad_bundle = tampered("batch-bad.json", &|b| {
        b["reports"][1]["signature"] = format!("0x{}", "22".repeat(64)).into()
    });
    // Batch publication on the run's own chain: the session's reports under
    // one root, each proven offline and by the EVM; a rerun sends nothing.
    let contract = v["chain"]["contract"].as_str().unwrap().to_string();
    let chain_dir = out.join("chain");
    let proofs = dir.path().join("proofs.json");
    let batch_args = |cmd: &str, file: &Path| -> Vec<String> {
        let mut a = vec!["chain".to_string(), cmd.to_string()];
        if cmd == "publish-batch" {
            a.extend([bundle.display().to_string(), "--out".into()]);
        }
        a.extend([
            file.display().to_string(),
            "--chain-dir".into(),
            chain_dir.display().to_string(),
            "--contract".into(),
            contract.clone(),
            "--json".into(),
        ]);
        a
    };
    let run_args = |a: Vec<String>| sealroom(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let o = run_args(batch_args("publish-batch", &proofs));
    assert!(o.status.success(), "{}", stderr(&o));
    let p: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(p["reports"], 2);
    assert_eq!(p["already_published"], false);
    let o = run_args(batch_args("check-batch", &proofs));
    assert!(o.status.success(), "{}", stderr(&o));
    let again = dir.path().join("proofs-again.json");
    let o = run_args(batch_args("publish-batch", &again));
    assert!(o.status.success(), "{}", stderr(&o));
    let q: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(q["already_published"], true);
    assert_eq!(q["tx_hash"], p["tx_hash"]);
    // A proof altered, or a report byte flipped: exit 1 naming the check.
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&proofs).unwrap()).unwrap();
    doc["reports"][0]["proof"][0] = format!("0x{}", "11".repeat(32)).into();
    std::fs::write(&again, serde_json::to_vec(&doc).unwrap()).unwrap();
    let o = run_args(batch_args("check-batch", &again));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("batch.proof"), "{}", stderr(&o));
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&proofs).unwrap()).unwrap();
    let mut abi = doc["reports"][1]["report_abi"]
        .as_str()
        .unwrap()
        .to_string();
    abi.replace_range(700..702, "ff");
    doc["reports"][1]["report_abi"] = abi.into();
    std::fs::write(&again, serde_json::to_vec(&doc).unwrap()).unwrap();
    let o = run_args(batch_args("check-batch", &again));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("batch.report"), "{}", stderr(&o));
    // A bundle that does not verify is not published.
    let o = run_args(vec![
        "chain".into(),
        "publish-batch".into(),
        bad_bundle.display().to_string(),
        "--out".into(),
        dir.path().join("never.json").display().to_string(),
        "--chain-dir".into(),
        chain_dir.display().to_string(),
        "--contract".into(),
        contract.clone(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(!dir.path().join("never.json").exists());
}

#[test]
fn digits_run_meets_the_quality_bar() {
    let dir = tempfile::tempdir().unwrap();
    let (o, v) = run_json(
        &scenario("digits-3-labs.toml"),
        &dir.path().join("run"),
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(v["verification"]["verified"], true);
    let acc = v["model"]["metrics"]["accuracy"].as_f64().unwrap();
    assert!(acc >= 0.965, "digits accuracy {acc}");
    model_is_usable_outside_sealroom(&dir.path().join("run"), &v, "digits/owner-validation.csv");
}

/// DP-SGD end to end: the breast-cancer DP scenario (σ solved for ε = 3
/// at δ = 1e-5 when the manifest is made, noise keyed inside the node)
/// verifies from the chain with the `privacy` check recomputing ε from the
/// manifest, the owner's sealed metrics carry the same ε, accuracy stays
/// high (≥ 0.95 at four fixed seeds in `cargo test -p sealroom-trainer
/// dp_sgd_keeps`; this run's noise is fresh, so the bar here leaves room),
/// and `bench overhead` reports DP against non-DP training.
#[test]
fn dp_breast_cancer_run_publishes_and_verifies_its_epsilon() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let (o, v) = run_json(&scenario("breast-cancer-dp.toml"), &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(v["verification"]["verified"], true);
    let privacy = v["verification"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "privacy")
        .unwrap()
        .clone();
    let detail = privacy["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("DP-SGD spent ε = 3.0000 at δ = 0.00001"),
        "{detail}"
    );
    let acc = v["model"]["metrics"]["accuracy"].as_f64().unwrap();
    assert!(acc >= 0.93, "DP accuracy {acc}");
    // The regulator's verifier on the bundle alone says the same.
    let o = verify_bundle_json(&out.join("bundle.json"), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let again = j["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "privacy")
        .unwrap();
    assert_eq!(again["detail"], privacy["detail"]);
    // A regulator's stricter policy (max_epsilon 1) fails the check.
    let strict = dir.path().join("strict.toml");
    std::fs::write(
        &strict,
        "accepted_kinds = [\"sim\"]\nallow_simulation = true\nmax_epsilon = 1.0\n",
    )
    .unwrap();
    let o = verify_bundle_json(
        &out.join("bundle.json"),
        &["--policy", strict.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(failed_check(&o), "privacy");

    let o = sealroom(&[
        "bench",
        "overhead",
        "--scenario",
        &scenario("breast-cancer-dp.toml"),
        "--runs",
        "1",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let b: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for k in ["train_s", "dp_train_s", "dp_ratio", "sealed_s"] {
        assert!(b[k].as_f64().is_some_and(|x| x > 0.0), "{k}: {b}");
    }
    assert_eq!(b["same_model"], false);
}

/// `task = "regression"` end to end: the diabetes scenario's R² on the
/// owner's set is within 0.02 of ordinary least squares on the same split
/// (`scenarios/data/baseline_diabetes.py`, run here as the oracle), the
/// owner's `model eval` reproduces the sealed R² and RMSE, and numpy alone
/// runs the exported weights to `model predict`'s values.
#[test]
fn diabetes_regression_matches_least_squares() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let (o, v) = run_json(&scenario("diabetes-3-clinics.toml"), &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(v["verification"]["verified"], true);
    let metrics = &v["model"]["metrics"];
    assert_eq!(metrics["task"], "regression", "{metrics}");
    assert!(metrics["accuracy"].is_null(), "{metrics}");
    let r2 = metrics["r2"].as_f64().unwrap();
    let rmse = metrics["rmse"].as_f64().unwrap();

    python_with_safetensors_and_numpy();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/data/baseline_diabetes.py");
    let o = Command::new("python3").arg(&script).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let line = String::from_utf8_lossy(&o.stdout).to_string();
    let field = |k: &str| -> f64 {
        let mut words = line.split_whitespace();
        words.find(|w| *w == k).unwrap();
        words.next().unwrap().parse().unwrap()
    };
    let (base_r2, base_rmse) = (field("r2"), field("rmse"));
    assert!(
        (r2 - base_r2).abs() <= 0.02,
        "sealroom R² {r2} vs least squares {base_r2} ({line})"
    );
    assert!(rmse < base_rmse * 1.05, "RMSE {rmse} vs {base_rmse}");

    // The auditor's summary says what is predicted (the metrics themselves
    // are sealed to the owner), and never speaks of an accuracy.
    let o = sealroom(&[
        "report",
        "verify",
        out.join("bundle.json").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("that predicts the number `progression` (regression)")
            && !text.to_lowercase().contains("accuracy"),
        "{text}"
    );
    // The run's own human summary gives R² and RMSE, to three decimals.
    let human = dir.path().join("human");
    let o = sealroom(&[
        "run",
        &scenario("diabetes-3-clinics.toml"),
        "--out",
        human.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains(&format!(
            "R²           {r2:.3}, RMSE {rmse:.3} on the owner's validation set"
        )),
        "{text}"
    );

    let model = out.join("model.bin");
    let m = model.to_str().unwrap();
    let records = out.join("owner").join("state");
    let r = records.to_str().unwrap();
    let data =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/data/diabetes/owner-validation.csv");
    let d = data.to_str().unwrap();
    let o = sealroom(&["model", "eval", m, "--data", d, "--record", r, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let eval: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(eval["task"], "regression");
    assert_eq!(eval["r2"], metrics["r2"], "{eval}");
    assert_eq!(eval["rmse"], metrics["rmse"], "{eval}");
    assert_eq!(eval["records"], metrics["validation_records"]);

    let export = out.join("export");
    let e = export.to_str().unwrap();
    let o = sealroom(&["model", "export", m, "--out", e, "--record", r]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = sealroom(&["model", "predict", m, "--data", d, "--record", r, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ours: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let forward = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/model-forward.py");
    let o = Command::new("python3")
        .arg(&forward)
        .arg(&export)
        .arg(&data)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let theirs: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(theirs["task"], "regression");
    let (ours, theirs) = (
        ours["predictions"].as_array().unwrap(),
        theirs["predictions"].as_array().unwrap(),
    );
    assert_eq!(ours.len(), 88);
    assert_eq!(ours.len(), theirs.len());
    for (a, b) in ours.iter().zip(theirs) {
        let (x, y) = (a["value"].as_f64().unwrap(), b["value"].as_f64().unwrap());
        assert!(
            (x - y).abs() <= 1e-5 * y.abs().max(1.0),
            "row {}: {x} vs numpy {y}",
            a["row"]
        );
    }
}

/// Fails loudly, never skips, when the Python side of the export check is
/// missing.
fn python_with_safetensors_and_numpy() {
    let o = Command::new("python3")
        .args(["-c", "import safetensors, numpy"])
        .output()
        .expect("python3 is needed by this test (scripts/test installs safetensors and numpy)");
    assert!(
        o.status.success(),
        "python3 lacks safetensors or numpy (scripts/test installs them; by hand: python3 -m pip install --user safetensors numpy): {}",
        stderr(&o)
    );
}

/// The owner's model of a run is usable outside sealroom: `model eval` on
/// the owner's validation set gives the accuracy the node sealed,
/// `model export` writes the safetensors and the card (names and the
/// completed report's hash from the owner's record), and numpy alone
/// (`scripts/model-forward.py`: card, preprocessing, forward pass) gives
/// `model predict --json`'s probabilities to 1e-5.
fn model_is_usable_outside_sealroom(out: &Path, v: &serde_json::Value, validation: &str) {
    let model = out.join("model.bin");
    let m = model.to_str().unwrap();
    let records = out.join("owner").join("state");
    let r = records.to_str().unwrap();
    let data = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios/data")
        .join(validation);
    let d = data.to_str().unwrap();

    let o = sealroom(&["model", "eval", m, "--data", d, "--record", r, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let eval: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        eval["accuracy"], v["model"]["metrics"]["accuracy"],
        "{eval}"
    );
    assert_eq!(eval["records"], v["model"]["metrics"]["validation_records"]);
    let cm: Vec<Vec<u64>> = serde_json::from_value(eval["confusion_matrix"].clone()).unwrap();
    let classes = eval["classes"].as_u64().unwrap() as usize;
    assert_eq!(cm.len(), classes);
    assert_eq!(
        cm.iter().flatten().sum::<u64>(),
        eval["records"].as_u64().unwrap()
    );
    let trace: u64 = (0..classes).map(|i| cm[i][i]).sum();
    assert_eq!(trace, eval["correct"].as_u64().unwrap());
    let o = sealroom(&["model", "eval", m, "--data", d, "--record", r]);
    assert!(o.status.success(), "{}", stderr(&o));
    let first = format!(
        "accuracy {:.3} ({}/{} correct)",
        eval["accuracy"].as_f64().unwrap(),
        eval["correct"],
        eval["records"]
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).starts_with(&first),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );

    let export = out.join("export");
    let e = export.to_str().unwrap();
    let o = sealroom(&["model", "export", m, "--out", e, "--record", r, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let card: serde_json::Value =
        serde_json::from_slice(&std::fs::read(export.join("model-card.json")).unwrap()).unwrap();
    assert_eq!(card["format"], "sealroom-model-card/1");
    assert_eq!(
        format!("0x{}", card["model_sha256"].as_str().unwrap()),
        v["model"]["sha256"].as_str().unwrap()
    );
    assert_eq!(
        card["provenance"]["completed_report_hash"],
        v["model"]["verified_by_owner"]["completed_report"]
    );
    assert_eq!(card["provenance"]["session_id"], v["session_id"]);
    let features = card["features"].as_array().unwrap();
    assert_eq!(
        features.len() as u64,
        card["architecture"]["inputs"].as_u64().unwrap()
    );
    let weights = std::fs::read(export.join("model.safetensors")).unwrap();
    assert_eq!(
        card["weights"]["sha256"].as_str().unwrap(),
        hex::encode(sealroom_protocol::hash::sha256(&weights))
    );

    let o = sealroom(&["model", "predict", m, "--data", d, "--record", r, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ours: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    python_with_safetensors_and_numpy();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/model-forward.py");
    let o = Command::new("python3")
        .arg(&script)
        .arg(&export)
        .arg(&data)
        .output()
        .expect("run python3");
    assert!(
        o.status.success(),
        "scripts/model-forward.py: {}",
        stderr(&o)
    );
    let theirs: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let (ours, theirs) = (
        ours["predictions"].as_array().unwrap(),
        theirs["predictions"].as_array().unwrap(),
    );
    assert_eq!(ours.len(), theirs.len());
    assert_eq!(ours.len() as u64, eval["records"].as_u64().unwrap());
    for (a, b) in ours.iter().zip(theirs) {
        let pa: Vec<f64> = serde_json::from_value(a["probabilities"].clone()).unwrap();
        let pb: Vec<f64> = serde_json::from_value(b["probabilities"].clone()).unwrap();
        assert_eq!(pa.len(), classes);
        assert_eq!(pb.len(), classes);
        for (x, y) in pa.iter().zip(&pb) {
            assert!(
                (x - y).abs() <= 1e-5,
                "row {}: {pa:?} vs numpy {pb:?}",
                a["row"]
            );
        }
        // The class agrees unless the top two are within rounding of each other.
        let mut sorted = pb.clone();
        sorted.sort_by(|x, y| y.total_cmp(x));
        if sorted[0] - sorted[1] > 1e-4 {
            assert_eq!(a["class"], b["class"], "row {}", a["row"]);
        }
    }
}

#[test]
fn blob_corrupted_at_rest_ends_in_a_published_abort() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let (o, v) = run_json(
        &scenario("breast-cancer-3-hospitals.toml"),
        &out,
        &["--corrupt-blob-at-rest", "hospital-b"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    // The coordinator re-hashes what it serves and cuts the stream of a blob
    // that no longer matches its content address (check `blob`); a blob that
    // still reached the node whole would fail its `ciphertext-hash`.
    assert!(
        err.contains("hospital-b") && (err.contains("ciphertext-hash") || err.contains(": blob:")),
        "{err}"
    );
    assert_eq!(v["state"], "aborted");
    let kinds: Vec<&str> = v["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["aborted"]);
    assert!(
        v["reports"][0]["tx_hash"].as_str().is_some(),
        "the aborted report is on chain"
    );
    // The regulator sees a verified, aborted session.
    let o = verify_bundle_json(&out.join("bundle.json"), &[]);
    assert!(o.status.success());
    let got: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(got["outcome"], "aborted");
    assert!(!out.join("model.bin").exists());
}

#[test]
fn run_on_a_real_anvil() {
    let dir = tempfile::tempdir().unwrap();
    let (o, v) = run_json(
        &scenario("breast-cancer-3-hospitals.toml"),
        &dir.path().join("run"),
        &["--chain", "anvil"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(v["chain"]["kind"], "rpc");
    assert_eq!(v["chain"]["chain_id"], 31337);
    assert_eq!(v["verification"]["verified"], true);
    // The signed manifest names the chain the reports really went to.
    let bundle: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("run/bundle.json")).unwrap())
            .unwrap();
    assert_eq!(bundle["envelope"]["manifest"]["chain"]["target"], "anvil");
}

#[test]
fn bench_parties_over_http_reports_its_shape() {
    let o = sealroom(&["bench", "parties", "--n", "12", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON object");
    assert_eq!(v["parties"], 12);
    assert!(v["wall_s"].as_f64().unwrap() > 0.0);
    let per = v["per_party_s"].as_f64().unwrap();
    assert!((per * 12.0 - v["wall_s"].as_f64().unwrap()).abs() < 1e-9);
    // Growth over party counts: one row per count, ratios against the first.
    let o = sealroom(&["bench", "parties", "--counts", "4,8", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON object");
    let rows = v["counts"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["ratio"], 1.0);
    assert_eq!(v["linear_ratio"], 2.0);
    let growth = v["growth_ratio"].as_f64().unwrap();
    let ratio = rows[1]["wall_s"].as_f64().unwrap() / rows[0]["wall_s"].as_f64().unwrap();
    // The JSON's floats round-trip to within an ulp or two.
    assert!(
        (growth - ratio).abs() <= 1e-12 * ratio,
        "{growth} vs {ratio}"
    );
    let o = sealroom(&["bench", "parties", "--counts", "5"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--counts"));
}

/// `bench train` runs both CPU backends on one scenario: each replays its
/// own bytes, the two backends' bytes differ, the quality agrees; and
/// `bench commit` reports the intrinsic limit and the one-thread baseline
/// (it fails itself if the one-thread commit's root differs).
#[test]
fn bench_train_and_commit_report_their_baselines() {
    let o = sealroom(&[
        "bench",
        "train",
        "--scenario",
        &scenario("breast-cancer-3-hospitals.toml"),
        "--runs",
        "2",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON object");
    let b = v["backends"].as_array().unwrap();
    assert_eq!(b.len(), 2);
    assert_eq!(b[0]["backend"], "burn-ndarray (cpu)");
    assert_eq!(b[1]["backend"], "burn-flex (cpu)");
    assert!(b.iter().all(|x| x["deterministic"] == true), "{v}");
    assert_ne!(b[0]["model_sha256"], b[1]["model_sha256"]);
    let acc = |x: &serde_json::Value| -> f64 {
        x["quality"].as_str().unwrap()["accuracy ".len()..]
            .parse()
            .unwrap()
    };
    assert!((acc(&b[0]) - acc(&b[1])).abs() < 0.02, "{v}");
    assert_eq!(b[0]["ratio_to_ndarray"], 1.0);

    let o = sealroom(&["bench", "commit", "--size-mb", "2", "--runs", "1", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON object");
    for k in [
        "limit_ratio",
        "speedup_all_cores",
        "one_thread_records_s",
        "limit_records_s",
    ] {
        assert!(v[k].as_f64().is_some_and(|x| x > 0.0), "{k}: {v}");
    }
    let lr = v["commit_records_s"].as_f64().unwrap() / v["limit_records_s"].as_f64().unwrap();
    assert!(
        (lr - v["limit_ratio"].as_f64().unwrap()).abs() < 1e-9 * lr,
        "{v}"
    );
}

#[test]
fn run_rejects_bad_input_with_exit_2() {
    let o = sealroom(&["run", "/nonexistent.toml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("/nonexistent.toml"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x"), "occupied").unwrap();
    let o = sealroom(&[
        "run",
        &scenario("breast-cancer-3-hospitals.toml"),
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--out"));
    // A policy the simulated node of `run` cannot meet: exit 2 naming the
    // file and field, before anything is committed.
    for (extra, field) in [
        ("allow_simulation = false", "policy.allow_simulation"),
        ("accepted_kinds = [\"tdx\"]", "policy.accepted_kinds"),
    ] {
        let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let text = std::fs::read_to_string(base.join("breast-cancer-3-hospitals.toml")).unwrap();
        let text = text.replace("\"data/", &format!("\"{}/", base.join("data").display()));
        let text = text
            .replace("accepted_kinds = [\"sev-snp\", \"tdx\", \"sim\"]\n", "")
            .replace("allow_simulation = true\n", "")
            .replace("[policy]\n", "[policy]\naccepted_kinds = [\"sev-snp\", \"tdx\", \"sim\"]\nallow_simulation = true\n");
        // The line under test replaces its default.
        let key = extra.split(' ').next().unwrap();
        let text: String = text
            .lines()
            .filter(|l| !l.starts_with(&format!("{key} =")))
            .map(|l| format!("{l}\n"))
            .collect::<String>()
            .replace("[policy]\n", &format!("[policy]\n{extra}\n"));
        let f = dir.path().join("policy.toml");
        std::fs::write(&f, text).unwrap();
        let out = dir.path().join("never");
        let o = sealroom(&["run", f.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{extra}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(
            e.contains("policy.toml") && e.contains(field),
            "{extra}: {e}"
        );
        assert!(!out.exists(), "{extra}: nothing is written");
    }
}

/// A variant of a shipped scenario written to `dir/file` (datasets by
/// absolute path) with `extra` appended.
fn scenario_with(dir: &Path, name: &str, file: &str, extra: &str) -> String {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let text = std::fs::read_to_string(base.join(name)).unwrap();
    let text = text.replace("\"data/", &format!("\"{}/", base.join("data").display()));
    let p = dir.join(file);
    std::fs::write(&p, format!("{text}\n{extra}\n")).unwrap();
    p.display().to_string()
}

/// The 64-hex measurement a check's detail names.
fn measurement_in(detail: &str) -> Option<String> {
    detail
        .split(|c: char| !c.is_ascii_hexdigit())
        .find(|w| w.len() == 64)
        .map(str::to_string)
}

/// The `engine.allowlist` line of a verification.
fn engine_check(checks: &serde_json::Value) -> serde_json::Value {
    checks
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "engine.allowlist")
        .cloned()
        .unwrap_or_else(|| panic!("no engine.allowlist check in {checks}"))
}

/// `sealroom engine measure` prints the SHA-256 of the `sealroom-node`
/// beside `sealroom`; that is what the simulated node attests (in the run's
/// evidence and in the bundle), a scenario pinning it runs, and a scenario
/// pinning another value is refused: the coordinator refuses the
/// registration (`engine.allowlist`) and the node names its own check
/// (`engine: engine.allowlist`).
#[test]
fn engine_measure_is_what_the_node_attests_and_what_a_scenario_pins() {
    let o = sealroom(&["engine", "measure", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON object");
    let m = v["measurement"].as_str().unwrap().to_string();
    let node = Path::new(env!("CARGO_BIN_EXE_sealroom"))
        .parent()
        .unwrap()
        .join(format!("sealroom-node{}", std::env::consts::EXE_SUFFIX));
    assert_eq!(PathBuf::from(v["path"].as_str().unwrap()), node);
    let bytes = std::fs::read(&node).unwrap();
    use sha2::Digest;
    assert_eq!(m, hex::encode(sha2::Sha256::digest(&bytes)));
    // Not the measurement of `sealroom` itself.
    let own = std::fs::read(env!("CARGO_BIN_EXE_sealroom")).unwrap();
    assert_ne!(m, hex::encode(sha2::Sha256::digest(&own)));
    // The human form prints the measurement alone on stdout; a PATH works too.
    let o = sealroom(&["engine", "measure", node.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), m);
    let o = sealroom(&["engine", "measure", "/nonexistent/sealroom-node"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("/nonexistent/sealroom-node"));

    // A scenario pinning exactly that value runs; the evidence attests it.
    let dir = tempfile::tempdir().unwrap();
    let pinned = scenario_with(
        dir.path(),
        "breast-cancer-3-hospitals.toml",
        "pinned.toml",
        &format!("[engine]\ntrainer_measurements = [\"{m}\"]"),
    );
    let out = dir.path().join("pinned");
    let (o, v) = run_json(&pinned, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(v["verification"]["verified"], true, "{v}");
    let c = engine_check(&v["verification"]["checks"]);
    assert_eq!(c["ok"], true, "{c}");
    assert_eq!(
        measurement_in(c["detail"].as_str().unwrap()),
        Some(m.clone())
    );
    // The bundle's evidence, verified offline, attests the same value.
    let o = verify_bundle_json(&out.join("bundle.json"), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let b: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let c = engine_check(&b["checks"]);
    assert_eq!(
        measurement_in(c["detail"].as_str().unwrap()),
        Some(m.clone()),
        "{c}"
    );

    // Another value: the node is refused, the run fails and nothing trains.
    let other = "11".repeat(32);
    let refused = scenario_with(
        dir.path(),
        "breast-cancer-3-hospitals.toml",
        "other.toml",
        &format!("[engine]\ntrainer_measurements = [\"{other}\"]"),
    );
    let out = dir.path().join("refused");
    let (o, _) = run_json(&refused, &out, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    // `run` says why, from the node's own last error line, not only where to look.
    assert!(
        stderr(&o).contains("the node stopped: verification failed: engine: engine.allowlist")
            && stderr(&o).contains("node.log has the whole log"),
        "{}",
        stderr(&o)
    );
    let log = std::fs::read_to_string(out.join("node.log")).unwrap();
    // The node's own check, then the coordinator's refusal beside it.
    assert!(
        log.contains("verification failed: engine: engine.allowlist"),
        "{log}"
    );
    assert!(
        log.contains("coordinator refused the registration too") && log.contains("409"),
        "{log}"
    );
    assert!(log.contains(&m), "{log}");
    assert!(!log.contains("training on"), "{log}");
}

/// A small session whose accuracy is measured on a split held out of the
/// pooled data (no owner validation set), with 1-based labels leaving class
/// 0 unused: the warning is printed and in the summary, and the human
/// output says what the accuracy was measured on, how many of how many
/// records were right, and the timings in seconds (issue 14, item 4).
#[test]
fn a_validation_split_run_says_what_its_accuracy_is_measured_on() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Three separable classes 1..=3, label_classes = 4.
    let mut csv = String::from("alcohol,ash,class\n");
    for i in 0..90u32 {
        let c = 1 + i % 3;
        let jitter = f64::from(i % 7) / 10.0;
        csv.push_str(&format!("{},{},{c}\n", f64::from(c) * 3.0 + jitter, jitter));
    }
    std::fs::write(d.join("a.csv"), csv).unwrap();
    let scenario = d.join("split.toml");
    std::fs::write(
        &scenario,
        "[session]\nname = \"split\"\n\
         [schema]\nfeatures = [\"alcohol\", \"ash\"]\nlabel = \"class\"\nlabel_classes = 4\n\
         [model]\nkind = \"logistic-regression\"\n\
         [training]\nepochs = 30\nbatch_size = 16\noptimizer = \"adam\"\nlearning_rate = 0.05\nseed = 3\nvalidation_split = 0.2\n\
         [owner]\nname = \"owner\"\n\
         [[party]]\nname = \"a\"\ndataset = \"a.csv\"\n\
         [policy]\naccepted_kinds = [\"sim\"]\nallow_simulation = true\n",
    )
    .unwrap();
    let out = d.join("human");
    let o = sealroom(&[
        "run",
        scenario.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{}{text}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "{}:6: warning: schema.label_classes: class 0 of 0..4 appears in no party's dataset",
            scenario.display()
        )),
        "{}",
        stderr(&o)
    );
    let line = |k: &str| {
        text.lines()
            .find(|l| l.starts_with(k))
            .unwrap_or_else(|| panic!("no {k} line in {text}"))
            .to_string()
    };
    let accuracy = line("accuracy");
    assert!(
        accuracy
            .ends_with("correct) on the held-out split of the pooled data (validation_split 0.2)"),
        "{accuracy}"
    );
    assert!(!text.contains("owner's validation set"), "{text}");
    // `0.917 (33/36 correct)`: three decimals, and the count behind them.
    let words: Vec<&str> = accuracy.split_whitespace().collect();
    assert_eq!(words[1].len(), 5, "{accuracy}");
    let (right, of) = words[2].trim_start_matches('(').split_once('/').unwrap();
    let (right, of): (u64, u64) = (right.parse().unwrap(), of.parse().unwrap());
    assert_eq!(of, 18, "{accuracy}");
    let acc: f64 = words[1].parse().unwrap();
    assert!(
        (acc - right as f64 / of as f64).abs() < 0.0006,
        "{accuracy}"
    );
    let timings = line("timings");
    assert!(
        timings.contains(" commit ") && timings.contains(" s, total ") && !timings.contains('{'),
        "{timings}"
    );
    for t in timings.split(", ") {
        let secs = t.split_whitespace().rev().nth(1).unwrap();
        assert_eq!(secs.split_once('.').unwrap().1.len(), 2, "{timings}");
    }

    // The JSON summary keeps the exact values and says where the accuracy comes from.
    let (o, v) = run_json(scenario.to_str().unwrap(), &d.join("json"), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let m = &v["model"]["metrics"];
    assert_eq!(m["validated_on"], "held-out-split", "{m}");
    assert_eq!(m["validation_records"], 18, "{m}");
    assert!(v["timings_s"]["total"].as_f64().unwrap() > 0.0);
    assert_eq!(v["warnings"][0]["severity"], "warning", "{v}");
    assert_eq!(v["warnings"][0]["field"], "schema.label_classes", "{v}");
}

/// `require_gpu = true` with simulation allowed: `sealroom run` composes a
/// simulated GPU into the node's evidence (`--gpu sim`), bound by its nonce
/// to the CPU evidence; the session completes and the verifier, from the
/// chain and from the bundle, verifies the GPU evidence and labels it
/// simulated.
#[test]
fn a_gpu_policy_runs_with_a_simulated_gpu_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let text = std::fs::read_to_string(base.join("breast-cancer-3-hospitals.toml"))
        .unwrap()
        .replace("\"data/", &format!("\"{}/", base.join("data").display()))
        .replace("[policy]\n", "[policy]\nrequire_gpu = true\n");
    let f = dir.path().join("gpu.toml");
    std::fs::write(&f, text).unwrap();
    let out = dir.path().join("run");
    let (o, v) = run_json(f.to_str().unwrap(), &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(v["verification"]["verified"], true);
    let ev = |checks: &serde_json::Value| {
        checks
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == "evidence.verified")
            .unwrap()["detail"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let from_chain = ev(&v["verification"]["checks"]);
    assert!(
        from_chain.contains("GPU evidence (sim: insecure simulation) verified"),
        "{from_chain}"
    );
    let o = verify_bundle_json(&out.join("bundle.json"), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let b: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(ev(&b["checks"]), from_chain);
    assert_eq!(b["insecure_simulation"], true);
    let plain = b["summary"]["plain"].to_string();
    assert!(plain.contains("SIMULATED GPU evidence"), "{plain}");
    let bundle: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("bundle.json")).unwrap()).unwrap();
    assert_eq!(bundle["envelope"]["gpu"]["kind"], "sim");
    let ev_detail = ev(&b["checks"]);
    assert!(
        ev_detail.contains("GPU measurements not pinned"),
        "{ev_detail}"
    );

    // A scenario that requires training on the GPU is refused by a node
    // built without the `cuda` feature (this one), naming the field, before
    // it registers: it never trains on the CPU instead.
    let cuda = dir.path().join("cuda.toml");
    std::fs::write(
        &cuda,
        std::fs::read_to_string(&f)
            .unwrap()
            .replace("[training]\n", "[training]\ncompute = \"cuda\"\n"),
    )
    .unwrap();
    let cuda_out = dir.path().join("cuda-run");
    let o = sealroom(&[
        "run",
        cuda.to_str().unwrap(),
        "--out",
        cuda_out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("training.compute") && e.contains("`cuda` feature") && e.contains("state open"),
        "{e}"
    );
}

/// Chromium's binary (scripts/test installs Debian's `chromium`); fails
/// loudly, never skips, when it is missing.
fn chromium() -> &'static str {
    for c in ["chromium", "chromium-browser", "google-chrome"] {
        if Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return c;
        }
    }
    panic!("chromium is needed by this test (scripts/test installs it; Debian: apt-get install chromium)");
}

/// The rendered DOM of `page` in headless Chromium, and the URLs of the
/// network requests the page itself started, read from Chromium's net log:
/// every `URL_REQUEST_START_JOB` whose initiator is an origin (the browser's
/// own background requests — time, sign-in — have "not an origin").
fn rendered_dom(page: &Path, dir: &Path) -> (String, Vec<String>) {
    let log = dir.join("net-log.json");
    let o = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-default-apps",
            "--disable-sync",
            "--virtual-time-budget=10000",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg(format!("--log-net-log={}", log.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    assert!(o.status.success(), "chromium: {}", stderr(&o));
    let text = std::fs::read_to_string(&log).expect("chromium's net log");
    // A log cut at exit lacks its closing brackets.
    let net: serde_json::Value = serde_json::from_str(&text)
        .or_else(|_| serde_json::from_str(&format!("{}]}}", text.trim_end().trim_end_matches(','))))
        .expect("net log JSON");
    let start = net["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"].clone();
    let requests = net["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == start && e["params"]["url"].is_string())
        .filter(|e| e["params"]["initiator"] != "not an origin")
        .map(|e| e["params"]["url"].as_str().unwrap_or_default().to_string())
        .collect();
    (String::from_utf8_lossy(&o.stdout).into_owned(), requests)
}

/// `(verified, failed check, [(check, ok)])` as the page rendered them.
fn page_verdict(dom: &str) -> (String, String, Vec<(String, bool)>) {
    let attr = |name: &str| -> String {
        let h1 = &dom[dom.find("<h1 id=\"verdict\"").expect("the verdict heading")..];
        let h1 = &h1[..h1.find('>').unwrap()];
        let key = format!("{name}=\"");
        h1.find(&key)
            .map(|i| {
                let v = &h1[i + key.len()..];
                v[..v.find('"').unwrap()].to_string()
            })
            .unwrap_or_default()
    };
    let mut checks = Vec::new();
    let mut rest = dom;
    while let Some(i) = rest.find("data-check=\"") {
        rest = &rest[i + 12..];
        let name = rest[..rest.find('"').unwrap()].to_string();
        let j = rest.find("data-ok=\"").unwrap();
        let ok = rest[j + 9..].starts_with("true");
        checks.push((name, ok));
    }
    (attr("data-verified"), attr("data-failed-check"), checks)
}

/// `report verify --html`: the page re-verifies in a real browser with the
/// verifier compiled to WebAssembly and shows the same verdict, the same
/// failed check and the same checklist as `report verify --json` — for the
/// run's bundle and for bundles with one byte flipped in a report, in the
/// evidence and in the manifest — and makes no network request at all.
#[test]
fn the_html_page_reverifies_in_chromium_like_the_cli_and_stays_offline() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let (o, _) = run_json(&scenario("breast-cancer-3-hospitals.toml"), &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(out.join("bundle.json")).unwrap();
    let original: serde_json::Value = serde_json::from_str(&text).unwrap();
    let flip = |s: &str, at: usize| -> String {
        let mut c: Vec<char> = s.chars().collect();
        c[at] = if c[at] == '0' { '1' } else { '0' };
        c.into_iter().collect()
    };
    let mut report = original.clone();
    let abi = report["reports"][1]["report_abi"]
        .as_str()
        .unwrap()
        .to_string();
    report["reports"][1]["report_abi"] = flip(&abi, abi.len() - 70).into();
    let mut evidence = original.clone();
    let ev = evidence["envelope"]["evidence"]
        .as_str()
        .unwrap()
        .to_string();
    evidence["envelope"]["evidence"] = flip(&ev, 100).into();
    let mut manifest = original.clone();
    let d = manifest["envelope"]["manifest"]["description"]
        .as_str()
        .unwrap()
        .to_string();
    manifest["envelope"]["manifest"]["description"] = format!("{d}!").into();

    // The detector sees a page's request: a page that fetches is caught.
    let leaky = dir.path().join("leaky.html");
    std::fs::write(
        &leaky,
        "<html><body><script>fetch('http://127.0.0.1:9/leak').catch(() => {})</script></body></html>",
    )
    .unwrap();
    let control = dir.path().join("control");
    std::fs::create_dir_all(&control).unwrap();
    let (_, requests) = rendered_dom(&leaky, &control);
    assert!(
        requests.iter().any(|u| u.contains("/leak")),
        "the net log should show the control page's fetch: {requests:?}"
    );

    let mut failed = Vec::new();
    for (name, bundle) in [
        ("original", None),
        ("report", Some(report)),
        ("evidence", Some(evidence)),
        ("manifest", Some(manifest)),
    ] {
        let path = dir.path().join(format!("{name}.json"));
        match bundle {
            Some(b) => std::fs::write(&path, serde_json::to_string_pretty(&b).unwrap()).unwrap(),
            None => std::fs::write(&path, &text).unwrap(),
        }
        let page = dir.path().join(format!("{name}.html"));
        let o = sealroom(&[
            "report",
            "verify",
            path.to_str().unwrap(),
            "--json",
            "--html",
            page.to_str().unwrap(),
        ]);
        let cli: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(
            o.status.code(),
            Some(if cli["verified"] == true { 0 } else { 1 }),
            "{name}"
        );
        let browser = dir.path().join(format!("browser-{name}"));
        std::fs::create_dir_all(&browser).unwrap();
        let (dom, requests) = rendered_dom(&page, &browser);
        assert!(
            requests.is_empty(),
            "{name}: the page made requests: {requests:?}"
        );
        let (verified, failed_check, checks) = page_verdict(&dom);
        assert_eq!(verified, cli["verified"].to_string(), "{name}: {dom:.2000}");
        assert_eq!(
            failed_check,
            cli["failure"]["check"].as_str().unwrap_or(""),
            "{name}"
        );
        let cli_checks: Vec<(String, bool)> = cli["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["check"].as_str().unwrap().to_string(), c["ok"] == true))
            .collect();
        assert_eq!(checks, cli_checks, "{name}");
        if name == "original" {
            assert_eq!(verified, "true");
            assert!(dom.contains("VERIFIED (completed)"));
            assert!(dom.contains("INSECURE SIMULATION"));
            assert!(dom.contains("hospital-a") && dom.contains("oncology-model-owner/validation"));
        } else {
            assert_eq!(verified, "false", "{name}");
            assert!(dom.contains("NOT VERIFIED"), "{name}");
            failed.push((name, failed_check));
        }
    }
    // Each flip is caught, and by a check about what was flipped.
    assert_eq!(failed[0].1, "report.signature", "{failed:?}");
    assert_eq!(failed[1].1, "evidence.hash", "{failed:?}");
    // Offline, an altered manifest is self-consistent; the reports it came
    // with name the manifest that was signed.
    assert_eq!(failed[2].1, "report.session", "{failed:?}");
}

/// `web/dist` (the WebAssembly verifier every page embeds) is exactly what
/// `scripts/build-web` builds from these sources: rebuilt here into a
/// temporary directory and compared byte for byte.
#[test]
fn the_embedded_webassembly_is_what_the_sources_build() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(root.join("scripts/build-web"))
        .arg(dir.path())
        .current_dir(root)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "scripts/build-web (needs the wasm32-unknown-unknown target, clang and wasm-bindgen-cli 0.2.130; scripts/test installs them): {}",
        stderr(&o)
    );
    // Same tools first: a different compiler builds different bytes, and
    // that is what the message should say.
    let tools = |d: &Path| std::fs::read_to_string(d.join("TOOLCHAIN")).unwrap_or_default();
    assert_eq!(
        tools(dir.path()),
        tools(&root.join("web/dist")),
        "web/dist was built with other tools than this machine has (rustc, wasm-bindgen, clang); rebuild it with scripts/build-web"
    );
    for f in ["sealroom_web_bg.wasm", "sealroom_web.js"] {
        let built = std::fs::read(dir.path().join(f)).unwrap();
        let shipped = std::fs::read(root.join("web/dist").join(f)).unwrap();
        assert!(
            built == shipped,
            "web/dist/{f} is not what the sources build (sha256 {} built, {} shipped): run scripts/build-web and commit web/dist",
            hex::encode(sealroom_protocol::hash::sha256(&built)),
            hex::encode(sealroom_protocol::hash::sha256(&shipped))
        );
    }
}
