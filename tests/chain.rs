//! The session registry on two real EVMs: a real anvil node (the npm
//! package `@foundry-rs/anvil`, installed by `npm install --prefix contracts --no-save`)
//! and the embedded revm chain, including the embedded chain's state
//! surviving a restart, plus the gas figures docs/chain.md quotes.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sealroom_contracts::alloy_primitives::{keccak256, Address, B256};
use sealroom_contracts::alloy_sol_types::SolCall;
use sealroom_contracts::gas::{filler, realistic_report};
use sealroom_contracts::{
    block_on, Chain, ChainError, ChainKey, EmbeddedChain, Preset, ReadOptions, Registry,
    RegistryError, ReportKind, RpcChain, RpcOptions, SessionRegistry, ANVIL_DEV_KEY,
};
use sealroom_protocol::merkle::{leaf_hash, StandardTree, WordType};

/// A real anvil on 127.0.0.1 with an ephemeral port, stopped on drop.
struct Anvil {
    child: Child,
    url: String,
}

impl Anvil {
    fn start() -> Self {
        let bin =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("contracts/node_modules/.bin/anvil");
        assert!(
            bin.exists(),
            "{} is missing: run `npm install --prefix contracts --no-save` before the tests (the README's test command does)",
            bin.display()
        );
        let mut child = Command::new(&bin)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--hardfork",
                "prague",
                "--chain-id",
                "31337",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn anvil");
        let stdout = child.stdout.take().expect("anvil stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut url = None;
        for line in lines.by_ref() {
            let line = line.expect("read anvil output");
            if let Some(addr) = line.strip_prefix("Listening on ") {
                url = Some(format!("http://{}", addr.trim()));
                break;
            }
        }
        let url = url.expect("anvil exited before listening");
        // Keep draining its log so the pipe never fills.
        std::thread::spawn(move || for _ in lines {});
        Self { child, url }
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        // SIGTERM first: the npm shim forwards it to the native binary
        // (SIGKILL would orphan the node).
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn word(seed: &str) -> B256 {
    keccak256(seed.as_bytes())
}

fn reverted_with(err: &RegistryError, name: &str) -> bool {
    matches!(err, RegistryError::Chain(ChainError::Reverted { reason, .. }) if reason.starts_with(name))
}

/// The whole scenario of the issue, on any chain.
async fn scenario<C: Chain>(chain: &C) -> (Address, B256) {
    let (registry, deployed) = Registry::deploy(chain, 1).await.expect("deploy");
    assert!(deployed.gas_used > 0);
    let session = word(&format!("session-{}", chain.label()));
    let manifest = word("manifest");
    let evidence = filler("tdx-quote", 5000);
    let signature = filler("sig", 64);

    let open = registry
        .open_session(session, manifest, chain.sender())
        .await
        .expect("open");
    assert!(!open.already_open);
    let again = registry
        .open_session(session, manifest, chain.sender())
        .await
        .expect("reopen");
    assert!(again.already_open);
    assert_eq!(
        again.tx_hash, open.tx_hash,
        "re-opening identically returns the original tx"
    );
    let clash = registry
        .open_session(session, word("other manifest"), chain.sender())
        .await;
    assert!(
        matches!(clash, Err(RegistryError::SessionConflict { .. })),
        "{clash:?}"
    );

    // completed before opened: the contract refuses.
    let early = realistic_report(
        session,
        manifest,
        ReportKind::Completed,
        B256::ZERO,
        &evidence,
    );
    let err = registry
        .publish(&early, &signature, &[])
        .await
        .expect_err("completed before opened");
    assert!(reverted_with(&err, "NotOpened"), "{err}");

    let opened = realistic_report(session, manifest, ReportKind::Opened, B256::ZERO, &evidence);
    let p1 = registry
        .publish(&opened, &signature, &evidence)
        .await
        .expect("publish opened");
    assert!(!p1.already_published);
    assert_eq!(p1.report_hash, opened.report_hash());
    assert!(p1.gas_used > 0);

    // Idempotent: the identical report again is a no-op returning the original tx.
    let p1b = registry
        .publish(&opened, &signature, &evidence)
        .await
        .expect("republish");
    assert!(p1b.already_published);
    assert_eq!(
        (p1b.tx_hash, p1b.block_number, p1b.gas_used),
        (p1.tx_hash, p1.block_number, p1.gas_used)
    );

    // A different report for the taken (session, opened): an error, not a record.
    let mut other = opened.clone();
    other.timestamp += 1;
    let err = registry
        .publish(&other, &signature, &evidence)
        .await
        .expect_err("conflict");
    assert!(matches!(err, RegistryError::Conflict { .. }), "{err}");
    // ... and the contract itself reverts it, whatever the client does: a
    // second `opened` must link the latest one (a replacement node attempt),
    // and the identical report again is a duplicate.
    let raw = |r: &sealroom_contracts::IntegrityReport| SessionRegistry::publishReportCall {
        sessionId: session,
        kind: 1,
        report: r.abi_bytes().into(),
        signature: signature.clone().into(),
        evidence: evidence.clone().into(),
    };
    let err = chain
        .send(registry.address(), raw(&other).abi_encode().into(), 1)
        .await
        .expect_err("unlinked second opened reverts");
    assert!(
        matches!(&err, ChainError::Reverted { reason, .. } if reason.starts_with("FieldMismatch: report prevReportHash")),
        "{err}"
    );
    let err = chain
        .send(registry.address(), raw(&opened).abi_encode().into(), 1)
        .await
        .expect_err("duplicate reverts");
    assert!(
        matches!(&err, ChainError::Reverted { reason, .. } if reason.starts_with("ReportExists")),
        "{err}"
    );

    // completed links opened; no evidence needed again.
    let completed = realistic_report(
        session,
        manifest,
        ReportKind::Completed,
        opened.report_hash(),
        &evidence,
    );
    let p2 = registry
        .publish(&completed, &signature, &[])
        .await
        .expect("publish completed");
    // aborted after completed: closed.
    let late = realistic_report(
        session,
        manifest,
        ReportKind::Aborted,
        opened.report_hash(),
        &evidence,
    );
    let err = registry
        .publish(&late, &signature, &[])
        .await
        .expect_err("aborted after completed");
    assert!(reverted_with(&err, "SessionClosed"), "{err}");

    // Wrong publisher.
    let foreign = word("foreign session");
    registry
        .open_session(foreign, manifest, Address::repeat_byte(0x42))
        .await
        .expect("open foreign");
    let foreign_report =
        realistic_report(foreign, manifest, ReportKind::Opened, B256::ZERO, &evidence);
    let err = registry
        .publish(&foreign_report, &signature, &evidence)
        .await
        .expect_err("wrong publisher");
    assert!(reverted_with(&err, "NotPublisher"), "{err}");
    // Wrong manifest, wrong evidence.
    let session3 = word("third session");
    registry
        .open_session(session3, manifest, chain.sender())
        .await
        .expect("open third");
    let bad = realistic_report(
        session3,
        word("not the manifest"),
        ReportKind::Opened,
        B256::ZERO,
        &evidence,
    );
    let err = registry
        .publish(&bad, &signature, &evidence)
        .await
        .expect_err("wrong manifest");
    assert!(
        reverted_with(&err, "FieldMismatch: report manifestHash"),
        "{err}"
    );
    let good = realistic_report(
        session3,
        manifest,
        ReportKind::Opened,
        B256::ZERO,
        &evidence,
    );
    // The evidence calldata is opaque to the contract (sealroom puts an
    // envelope there; verifiers hash the raw evidence inside it).
    registry
        .publish(&good, &signature, b"{\"format\":\"envelope\"}")
        .await
        .expect("opaque evidence");

    // After opened, re-opening still resolves (the manifest now comes from
    // the SessionOpened event: the opened report took over its slot).
    let info = registry
        .session(session)
        .await
        .expect("session")
        .expect("known");
    assert!(info.opened && !info.aborted);
    assert_eq!(info.manifest_hash, manifest);
    let again = registry
        .open_session(session, manifest, chain.sender())
        .await
        .expect("reopen after opened");
    assert_eq!(again.tx_hash, open.tx_hash);

    // An aborted session without an opened report: accepted (the loader
    // aborts before signing opened), checked against the manifest, and final.
    let session4 = word("aborted session");
    registry
        .open_session(session4, manifest, chain.sender())
        .await
        .expect("open fourth");
    let bad = realistic_report(
        session4,
        word("x"),
        ReportKind::Aborted,
        B256::ZERO,
        &evidence,
    );
    let err = registry
        .publish(&bad, &signature, &evidence)
        .await
        .expect_err("aborted, wrong manifest");
    assert!(
        reverted_with(&err, "FieldMismatch: report manifestHash"),
        "{err}"
    );
    let aborted4 = realistic_report(
        session4,
        manifest,
        ReportKind::Aborted,
        B256::ZERO,
        &evidence,
    );
    registry
        .publish(&aborted4, &signature, &evidence)
        .await
        .expect("aborted without opened");
    let opened4 = realistic_report(
        session4,
        manifest,
        ReportKind::Opened,
        B256::ZERO,
        &evidence,
    );
    let err = registry
        .publish(&opened4, &signature, &evidence)
        .await
        .expect_err("opened after aborted");
    assert!(reverted_with(&err, "SessionClosed"), "{err}");
    let rec4 = registry
        .read_session(session4, &ReadOptions::default())
        .await
        .expect("read aborted");
    assert_eq!(rec4.reports.len(), 1);
    assert_eq!(rec4.reports[0].report, aborted4);
    assert_eq!(rec4.info.manifest_hash, manifest);
    assert!(rec4.info.aborted && !rec4.info.opened);

    // Read back from events + calldata.
    let record = registry
        .read_session(session, &ReadOptions::default())
        .await
        .expect("read");
    assert_eq!(record.info.manifest_hash, manifest);
    assert_eq!(record.info.publisher, chain.sender());
    assert_eq!(record.reports.len(), 2);
    let r1 = record.report(ReportKind::Opened).expect("opened read back");
    assert_eq!(r1.report, opened);
    assert_eq!(r1.report_hash, opened.report_hash());
    assert_eq!(keccak256(&r1.report_bytes), r1.report_hash);
    assert_eq!(r1.signature.as_ref(), signature.as_slice());
    assert_eq!(r1.evidence.as_ref(), evidence.as_slice());
    assert_eq!(r1.tx_hash, p1.tx_hash);
    assert_eq!(r1.prev_report_hash, B256::ZERO);
    let r2 = record
        .report(ReportKind::Completed)
        .expect("completed read back");
    assert_eq!(r2.report, completed);
    assert_eq!(r2.tx_hash, p2.tx_hash);
    assert_eq!(r2.prev_report_hash, r1.report_hash);
    assert!(r2.evidence.is_empty());
    // Tiny windows exercise the chunked scan.
    let chunked = registry
        .read_session(session, &ReadOptions { max_block_range: 1 })
        .await
        .expect("chunked");
    assert_eq!(chunked, record);

    // Rust abi.encode == Solidity abi.encode, string field included.
    let aborted = realistic_report(
        session,
        manifest,
        ReportKind::Aborted,
        B256::ZERO,
        &evidence,
    );
    for r in [&opened, &completed, &aborted] {
        assert_eq!(
            registry.hash_report_onchain(r).await.expect("hashReport"),
            r.report_hash()
        );
    }

    // OpenZeppelin standard-tree proofs verify in the EVM.
    let leaves: Vec<([u8; 32], [u8; 32])> = (0..5u8)
        .map(|i| ([i; 32], word(&format!("digest {i}")).0))
        .collect();
    let tree =
        StandardTree::build([WordType::Bytes32, WordType::Bytes32], leaves.clone()).expect("tree");
    for (i, (a, b)) in leaves.iter().enumerate() {
        let proof = tree.proof(i).expect("proof");
        assert!(registry
            .verify_inclusion(tree.root(), leaf_hash(a, b), &proof)
            .await
            .expect("verify"));
        assert!(!registry
            .verify_inclusion(tree.root(), leaf_hash(b, a), &proof)
            .await
            .expect("verify"));
    }
    (registry.address(), session)
}

#[test]
fn registry_on_a_real_anvil() {
    let anvil = Anvil::start();
    block_on(async {
        let chain =
            RpcChain::from_preset(Preset::Anvil, Some(&anvil.url), None, RpcOptions::default())
                .await
                .expect("connect to anvil");
        assert_eq!(chain.chain_id(), 31337);
        assert_eq!(
            chain.sender(),
            ChainKey::from_hex(ANVIL_DEV_KEY).expect("key").address()
        );
        let (contract, session) = scenario(&chain).await;

        // A fresh connection (a verifier's) reads the same session.
        let verifier = RpcChain::connect_read_only(&anvil.url, Some(31337), RpcOptions::default())
            .await
            .expect("connect read-only");
        let record =
            sealroom_contracts::read_session(&verifier, contract, session, &ReadOptions::default())
                .await
                .expect("read");
        assert_eq!(record.reports.len(), 2);
        let err = Registry::deploy(&verifier, 1)
            .await
            .expect_err("read-only cannot send");
        assert!(
            matches!(err, RegistryError::Chain(ChainError::Config(_))),
            "{err}"
        );

        // The preset's chain id is enforced on connect.
        let wrong = RpcChain::from_preset(
            Preset::OpbnbTestnet,
            Some(&anvil.url),
            Some(ChainKey::anvil_dev()),
            RpcOptions::default(),
        )
        .await;
        assert!(
            matches!(
                wrong,
                Err(ChainError::ChainIdMismatch {
                    expected: 5611,
                    actual: 31337
                })
            ),
            "{wrong:?}"
        );
        // A dead endpoint is a transport error, after bounded retries.
        let opts = RpcOptions {
            attempts: 2,
            backoff: Duration::from_millis(10),
            ..RpcOptions::default()
        };
        let dead = RpcChain::connect(
            "http://127.0.0.1:9",
            ChainKey::anvil_dev(),
            None,
            "dead",
            opts,
        )
        .await;
        assert!(matches!(dead, Err(ref e) if e.is_transient()), "{dead:?}");
    })
    .expect("runtime");
}

#[test]
fn registry_on_the_embedded_chain_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (contract, session) = block_on(async {
        let chain = EmbeddedChain::open(dir.path()).expect("open embedded");
        assert!(chain.label().starts_with("embedded development chain"));
        assert_eq!(chain.chain_id(), 31337);
        // A second writer is refused while the first holds the directory.
        assert!(EmbeddedChain::open(dir.path()).is_err());
        scenario(&chain).await
    })
    .expect("runtime");

    // "Restart": a new chain object from the same directory.
    block_on(async {
        let chain = EmbeddedChain::open(dir.path()).expect("reopen embedded");
        let registry = Registry::at(&chain, contract);
        let record = registry
            .read_session(session, &ReadOptions::default())
            .await
            .expect("read after restart");
        assert_eq!(record.reports.len(), 2);
        let opened = &record.reports[0];
        // Idempotency holds across the restart too.
        let again = registry
            .publish(&opened.report, &opened.signature, &opened.evidence)
            .await
            .expect("republish");
        assert!(again.already_published);
        assert_eq!(again.tx_hash, opened.tx_hash);
        // And the chain keeps working.
        let s = word("after restart");
        registry
            .open_session(s, word("m"), chain.sender())
            .await
            .expect("open after restart");
    })
    .expect("runtime");

    // A read-only snapshot reads while nobody writes.
    block_on(async {
        let snap = EmbeddedChain::open_snapshot(dir.path()).expect("snapshot");
        let record =
            sealroom_contracts::read_session(&snap, contract, session, &ReadOptions::default())
                .await
                .expect("read snapshot");
        assert_eq!(record.reports.len(), 2);
    })
    .expect("runtime");
}

/// Gas of each step with a realistic report, on anvil and on the embedded
/// chain (both Prague rules). docs/chain.md quotes these figures.
#[test]
fn gas_figures() {
    let anvil = Anvil::start();
    let dir = tempfile::tempdir().expect("tempdir");
    block_on(async {
        let rpc =
            RpcChain::from_preset(Preset::Anvil, Some(&anvil.url), None, RpcOptions::default())
                .await
                .expect("anvil");
        let embedded = EmbeddedChain::open(dir.path()).expect("embedded");
        let a = sealroom_contracts::gas::measure(&rpc)
            .await
            .expect("gas on anvil");
        let e = sealroom_contracts::gas::measure(&embedded)
            .await
            .expect("gas on embedded");
        println!("{}", a.table("anvil"));
        println!("{}", e.table("embedded"));
        assert_eq!(
            a, e,
            "anvil and the embedded chain must charge the same gas"
        );
        // The goal (docs/chain.md, "Gas").
        assert!(
            a.opened_plus_completed_no_evidence() <= 120_000,
            "opened + completed without evidence: {} gas > 120k",
            a.opened_plus_completed_no_evidence()
        );
    })
    .expect("runtime");
}

/// The regulator's verifier against a real JSON-RPC node: a whole session
/// published on anvil by `sealroom run`, then read back with `--rpc`: the
/// publishing transactions are checked against their receipts
/// (`chain.receipt`), nothing is left unchecked, the chain's name is derived
/// from its id; an address without a registry (an account, or a contract
/// that is not the registry) is exit 2 "no registry at ADDR".
#[test]
fn report_verify_over_rpc_checks_receipts_and_refuses_a_wrong_contract() {
    let anvil = Anvil::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let sealroom = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_sealroom"))
            .args(args)
            .current_dir(&root)
            .env(sealroom_contracts::CHAIN_KEY_ENV, ANVIL_DEV_KEY)
            .output()
            .expect("run sealroom")
    };
    let err = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();
    let out = dir.path().join("run");
    let scenario = root.join("scenarios/breast-cancer-3-hospitals.toml");
    let o = sealroom(&[
        "run",
        scenario.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--chain",
        &anvil.url,
        "--json",
    ]);
    assert!(o.status.success(), "{}", err(&o));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).expect("summary");
    let session = summary["session_id"].as_str().unwrap().to_string();
    let contract = summary["chain"]["contract"].as_str().unwrap().to_string();

    let verify = |contract: &str| {
        sealroom(&[
            "report",
            "verify",
            "--session",
            &session,
            "--rpc",
            &anvil.url,
            "--contract",
            contract,
            "--json",
        ])
    };
    let o = verify(&contract);
    assert!(
        o.status.success(),
        "{} {}",
        String::from_utf8_lossy(&o.stdout),
        err(&o)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON object");
    assert_eq!(v["verified"], true, "{v}");
    assert_eq!(v["source"], "chain");
    assert_eq!(v["chain"]["chain_id"], 31337);
    assert_eq!(v["chain"]["name"], "local development chain (anvil)");
    assert_eq!(v["chain"]["checked"], true);
    assert_eq!(v["not_checked"].as_array().map(Vec::len), Some(0), "{v}");
    let receipt = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "chain.receipt")
        .expect("chain.receipt check");
    assert_eq!(receipt["ok"], true);
    assert!(
        receipt["detail"]
            .as_str()
            .unwrap()
            .starts_with("2 transaction(s)"),
        "{receipt}"
    );
    // The same session offline: the transactions are listed as not checked.
    let o = sealroom(&[
        "report",
        "verify",
        out.join("bundle.json").to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", err(&o));
    let off: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(off["source"], "offline");
    let listed: Vec<&str> = off["not_checked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["field"].as_str().unwrap())
        .collect();
    assert!(listed.contains(&"reports[1].tx_hash"), "{listed:?}");

    // An account with no code.
    let nobody = "0x00000000000000000000000000000000000000aa";
    let o = verify(nobody);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(
        err(&o).contains(&format!("no registry at {nobody}")),
        "{}",
        err(&o)
    );
    // A contract that is not the registry (it answers every call with one zero word).
    let runtime = "60206000f3";
    let init = format!("6005600c60003960056000f3{runtime}");
    let other = block_on(async {
        let chain =
            RpcChain::from_preset(Preset::Anvil, Some(&anvil.url), None, RpcOptions::default())
                .await
                .expect("anvil");
        chain
            .deploy(hex::decode(init).unwrap().into(), 1)
            .await
            .expect("deploy")
            .contract_address
            .expect("created")
    })
    .expect("runtime");
    let other = format!("{other:#x}");
    let o = verify(&other);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(
        err(&o).contains(&format!("no registry at {other}")),
        "{}",
        err(&o)
    );
}
