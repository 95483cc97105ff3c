//! Rendering and behaviour tests on ratatui's `TestBackend`: every screen,
//! pane, dialog and state, asserting on the buffer's text and styles.

use std::path::{Path, PathBuf};

use alloy_primitives::B256;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::style::Color;
use ratatui::Terminal;
use sealroom_protocol::api::{
    MemberStatus, NodeRegistration, ReportRecord, SessionState, SessionStatus, SessionSummary,
};
use sealroom_protocol::dataset::DatasetCommitment;
use sealroom_protocol::identity::Identity;
use sealroom_protocol::manifest::{ConsentAction, Manifest};
use sealroom_protocol::policy::TeeKind;
use sealroom_protocol::scenario::Scenario;
use sealroom_reports::attest::simulate::{sim_default_measurement, simulate};
use sealroom_reports::binding::expected_report_data;

use crate::app::{Action, App, Busy, Conn, Effect, FileCheck, Modal, Pane, Screen, SessionRow};
use crate::theme::Theme;
use crate::ui::{draw, KEYMAP};
use crate::worker::{detail_of, Msg};

struct Fx {
    me: Identity,
    owner: Identity,
    manifest: Manifest,
}

fn commitment(i: u8) -> DatasetCommitment {
    DatasetCommitment {
        merkle_root: B256::repeat_byte(i),
        record_count: 10 + i as u64,
        schema_hash: B256::repeat_byte(i.wrapping_add(1)),
        ciphertext_sha256: B256::repeat_byte(i.wrapping_add(2)),
        ciphertext_len: 1000 + i as u64,
    }
}

fn fixture_with(public_metrics: bool) -> Fx {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/breast-cancer-3-hospitals.toml");
    let mut scenario = Scenario::load(&path).unwrap();
    scenario.training.public_metrics = public_metrics;
    let me = Identity::generate().unwrap();
    let b = Identity::generate().unwrap();
    let c = Identity::generate().unwrap();
    let owner = Identity::generate().unwrap();
    let parties = vec![
        (me.public(), commitment(1)),
        (b.public(), commitment(2)),
        (c.public(), commitment(3)),
    ];
    let manifest = Manifest::from_scenario(
        &scenario,
        B256::repeat_byte(0x5e),
        1_700_000_000,
        parties,
        owner.public(),
        Some(commitment(9)),
    )
    .unwrap();
    Fx {
        me,
        owner,
        manifest,
    }
}

fn fixture() -> Fx {
    fixture_with(false)
}

fn status(fx: &Fx, state: SessionState) -> SessionStatus {
    let mut members: Vec<MemberStatus> = fx
        .manifest
        .parties
        .iter()
        .map(|p| MemberStatus {
            name: p.name.clone(),
            role: "party".into(),
            key: p.identity.ed25519,
            consented: false,
            withdrawn: false,
            blob_uploaded: Some(false),
            granted: Some(false),
        })
        .collect();
    members.push(MemberStatus {
        name: fx.manifest.owner.name.clone(),
        role: "owner".into(),
        key: fx.owner.public().ed25519,
        consented: false,
        withdrawn: false,
        blob_uploaded: Some(false),
        granted: Some(false),
    });
    SessionStatus {
        session_id: fx.manifest.session_id,
        manifest_hash: fx.manifest.hash(),
        manifest: fx.manifest.clone(),
        state,
        members,
        node: None,
        coordinator_verdict: None,
        reports: vec![],
        chain: Some(
            serde_json::json!({"kind": "embedded", "chain_id": 31337, "label": "embedded development chain"}),
        ),
        abort_reason: None,
        progress: None,
        attempts: vec![],
        lease_s: None,
    }
}

/// A sim node whose evidence is bound to this manifest (`good`) or to another one.
fn node(fx: &Fx, good: bool) -> NodeRegistration {
    let node_key = [0x11u8; 32];
    let hpke_key = Identity::generate().unwrap().public().x25519;
    let mh = if good {
        fx.manifest.hash()
    } else {
        B256::repeat_byte(0xee)
    };
    let rd = expected_report_data(&node_key, &hpke_key, &mh.0);
    let m = sim_default_measurement();
    NodeRegistration {
        node_key,
        hpke_key,
        kind: TeeKind::Sim,
        evidence: simulate(&rd, &m, false),
        certs: vec![],
        collateral: None,
        engine_measurement: hex::encode(m),
        gpu: None,
    }
}

fn app_for(fx: &Fx, theme: Theme) -> App {
    let mut app = App::new(fx.me.public(), "http://127.0.0.1:7300", theme);
    app.conn = Conn::Up { live: true };
    app
}

fn detail_app(fx: &Fx, st: SessionStatus, pane: Pane) -> App {
    let mut app = app_for(fx, Theme { color: true });
    app.screen = Screen::Detail;
    app.watched = Some(st.session_id);
    app.pane = pane;
    app.apply(Msg::Detail(Box::new(detail_of(st))));
    app
}

fn render(app: &App, w: u16, h: u16) -> (String, ratatui::buffer::Buffer) {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|f| draw(f, app)).unwrap();
    let buf = term.backend().buffer().clone();
    let mut text = String::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            text.push_str(buf[(x, y)].symbol());
        }
        text.push('\n');
    }
    (text, buf)
}

fn key(app: &mut App, code: KeyCode) -> Vec<Effect> {
    app.handle_key(KeyEvent::new(code, KeyModifiers::NONE))
}

fn typed(app: &mut App, s: &str) {
    for ch in s.chars() {
        key(app, KeyCode::Char(ch));
    }
}

fn row(fx: &Fx, name: &str, state: SessionState, ready: u32, role: &str) -> SessionRow {
    SessionRow {
        summary: SessionSummary {
            session_id: fx.manifest.session_id,
            name: name.into(),
            state,
            ready,
            total: 4,
            counts: None,
        },
        my_role: role.into(),
    }
}

#[test]
fn list_connecting_empty_and_unreachable() {
    let fx = fixture();
    let mut app = App::new(
        fx.me.public(),
        "http://127.0.0.1:7300",
        Theme { color: true },
    );
    let (t, _) = render(&app, 80, 24);
    assert!(t.contains("Connecting to the coordinator"), "{t}");
    assert!(t.contains("connecting"), "{t}");
    assert!(
        t.contains(&format!("me {}", fx.me.public().fingerprint())),
        "{t}"
    );

    app.apply(Msg::Conn(Conn::Up { live: false }));
    let (t, _) = render(&app, 80, 24);
    assert!(t.contains("No sessions on this coordinator yet."), "{t}");

    app.apply(Msg::Conn(Conn::Down {
        error: "connection refused".into(),
        retry_ms: 2000,
    }));
    let (t, _) = render(&app, 80, 24);
    assert!(
        t.contains("Coordinator unreachable: connection refused"),
        "{t}"
    );
    assert!(t.contains("unreachable, retry 2.0s"), "{t}");
}

#[test]
fn list_shows_name_state_my_role_and_each_members_step() {
    let fx = fixture();
    let mut app = app_for(&fx, Theme { color: true });
    // Two members consented and uploaded, nobody granted yet: `ready`
    // (all three steps) is 0, the step counts say how far they are.
    let mut halfway = row(
        &fx,
        "breast-cancer-3-hospitals",
        SessionState::Open,
        0,
        "party hospital-a",
    );
    halfway.summary.counts = Some(sealroom_protocol::api::MemberCounts {
        consented: 2,
        inputs: 3,
        uploaded: 2,
        granted: 0,
    });
    app.apply(Msg::Sessions(vec![
        halfway,
        // A coordinator that sends only the ready count.
        row(&fx, "digits-3-labs", SessionState::Published, 4, "owner"),
        row(&fx, "someone-elses", SessionState::Aborted, 0, "-"),
    ]));
    let (t, _) = render(&app, 80, 24);
    for s in [
        "Name",
        "State",
        "My role",
        "breast-cancer-3-hospitals",
        "open",
        "consent 2/4 · blobs 2/3 · grants 0/3",
        "party hospital-a",
        "digits-3-labs",
        "published",
        "ready 4/4 (consented, uploaded and granted)",
        "owner",
        "aborted",
        "ready 0/4",
        "0x5e5e5e",
        "Enter open",
    ] {
        assert!(t.contains(s), "missing {s:?} in\n{t}");
    }
    assert!(!t.contains("Ready"), "{t}");
    // The selection shows without colour too.
    assert!(t.contains("> breast-cancer-3-hospitals"), "{t}");
    assert!(t.contains("  digits-3-labs"), "{t}");
    // Navigation stays in bounds and Enter opens the selected session.
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    assert_eq!(app.selected, 2);
    key(&mut app, KeyCode::Up);
    let eff = key(&mut app, KeyCode::Enter);
    assert!(matches!(eff.as_slice(), [Effect::Watch(Some(id))] if *id == fx.manifest.session_id));
    assert_eq!(app.screen, Screen::Detail);
    let (t, _) = render(&app, 80, 24);
    assert!(t.contains("Loading the session"), "{t}");
    let eff = key(&mut app, KeyCode::Esc);
    assert!(matches!(eff.as_slice(), [Effect::Watch(None)]));
    assert_eq!(app.screen, Screen::List);
}

#[test]
fn overview_summarises_the_manifest_and_my_next_step_at_80x24() {
    let fx = fixture();
    let st = status(&fx, SessionState::Open);
    let app = detail_app(&fx, st, Pane::Overview);
    let (t, _) = render(&app, 80, 24);
    for s in [
        "[1 Overview]",
        " 2 Members ",
        "state open",
        "Overview · breast-cancer-3-hospitals",
        "3 Node",
        "4 Reports",
        "breast-cancer-3-hospitals",
        &format!("{:#x} ok", fx.manifest.hash()),
        "party hospital-a, input hospital-a",
        "press c to review the manifest hash and consent",
        "logistic-regression; 30 features, 2 classes",
        &format!(
            "{} epochs, batch {}, {:?} lr {}, seed {}, metrics owner only",
            fx.manifest.training.epochs,
            fx.manifest.training.batch_size,
            fx.manifest.training.optimizer,
            fx.manifest.training.learning_rate,
            fx.manifest.training.seed
        ),
        "kinds sev-snp,tdx,sim; simulation ALLOWED; debug refused",
        "oncology-model-owner",
        "hospital-a, hospital-b, hospital-c",
        "embedded development chain",
        "progress not started",
        "c consent",
    ] {
        assert!(t.contains(s), "missing {s:?} in\n{t}");
    }
    // Every line fits: nothing is cut at the right border of an 80-column screen.
    for line in t.lines() {
        assert!(line.chars().count() <= 80);
    }
}

#[test]
fn overview_flags_a_manifest_hash_mismatch_and_refuses_consent() {
    let fx = fixture();
    let mut st = status(&fx, SessionState::Open);
    st.manifest_hash = B256::repeat_byte(0xab);
    let mut app = detail_app(&fx, st, Pane::Overview);
    let (t, _) = render(&app, 100, 30);
    assert!(t.contains("MISMATCH"), "{t}");
    key(&mut app, KeyCode::Char('c'));
    assert_eq!(app.modal, Modal::None);
    let (t, _) = render(&app, 100, 30);
    assert!(
        t.contains("consent refused: the manifest does not hash"),
        "{t}"
    );
}

#[test]
fn members_pane_shows_consent_blob_grant_and_withdrawal() {
    let fx = fixture();
    let mut st = status(&fx, SessionState::Open);
    st.members[0].consented = true;
    st.members[0].blob_uploaded = Some(true);
    st.members[1].withdrawn = true;
    st.members[3].granted = None;
    st.members[3].blob_uploaded = None;
    let app = detail_app(&fx, st, Pane::Members);
    let (t, _) = render(&app, 80, 24);
    let line = |name: &str| {
        t.lines()
            .find(|l| l.contains(name))
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        t.contains("Member") && t.contains("Consent") && t.contains("Blob") && t.contains("Grant"),
        "{t}"
    );
    let a = line("hospital-a");
    assert!(
        a.contains("me") && a.contains("yes") && a.contains("no"),
        "{a}"
    );
    assert!(line("hospital-b").contains("WITHDRAWN"), "{t}");
    let o = line("oncology-model-owner");
    assert!(o.contains("owner") && o.contains('-'), "{o}");
}

#[test]
fn node_pane_without_a_node_disables_grant() {
    let fx = fixture();
    let mut st = status(&fx, SessionState::Open);
    st.members[0].consented = true;
    st.members[0].blob_uploaded = Some(true);
    let mut app = detail_app(&fx, st, Pane::Node);
    let (t, _) = render(&app, 80, 24);
    assert!(t.contains("No node has registered yet."), "{t}");
    key(&mut app, KeyCode::Char('g'));
    assert_eq!(app.modal, Modal::None);
    let (t, _) = render(&app, 80, 24);
    assert!(
        t.contains("grant disabled: no node has registered yet"),
        "{t}"
    );
}

#[test]
fn node_pane_sim_verified_by_me_is_red_and_grant_is_enabled() {
    let fx = fixture();
    let mut st = status(&fx, SessionState::NodeAttested);
    st.node = Some(node(&fx, true));
    st.coordinator_verdict = Some(serde_json::json!({"verified": true}));
    let mut app = detail_app(&fx, st, Pane::Node);
    let d = app.detail.as_ref().unwrap();
    assert!(
        d.my_verdict.as_ref().unwrap().verified,
        "{:?}",
        d.my_verdict
    );
    let (t, buf) = render(&app, 80, 24);
    for s in [
        "kind",
        "sim",
        "insecure-simulation",
        "node key",
        "1111111111111111…11111111",
        "measurement",
        "TCB",
        "MY VERDICT",
        "VERIFIED",
        "enabled: press g",
        "coordinator verified (not trusted: see mine)",
    ] {
        assert!(t.contains(s), "missing {s:?} in\n{t}");
    }
    // The insecure-simulation label is red.
    let (x, y) = find(&t, "insecure-simulation");
    assert_eq!(buf[(x, y)].bg, Color::Red);
    // Grant: prompt, then the confirmation names the node key and what is sealed.
    key(&mut app, KeyCode::Char('g'));
    assert!(matches!(app.modal, Modal::Prompt { .. }));
    typed(&mut app, "/tmp/a.datakey");
    let (t, _) = render(&app, 80, 24);
    assert!(
        t.contains("Grant my data key: path to the .datakey file")
            && t.contains("> /tmp/a.datakey_"),
        "{t}"
    );
    key(&mut app, KeyCode::Enter);
    let (t, _) = render(&app, 100, 30);
    for s in [
        "Confirm: exactly what will be signed and sent",
        &format!("manifest  {:#x}", fx.manifest.hash()),
        "GRANT my data key",
        "input     hospital-a",
        "key file  /tmp/a.datakey",
        &format!("node key  {}", hex::encode([0x11u8; 32])),
        "INSECURE-SIMULATION",
        "y sign and send",
    ] {
        assert!(t.contains(s), "missing {s:?} in\n{t}");
    }
    let eff = key(&mut app, KeyCode::Char('y'));
    assert!(
        matches!(eff.as_slice(), [Effect::Run(Action::Grant(p), _)] if p == &PathBuf::from("/tmp/a.datakey"))
    );
    let (t, _) = render(&app, 80, 24);
    assert!(t.contains("grant…"), "{t}");
}

fn find(text: &str, needle: &str) -> (u16, u16) {
    for (y, line) in text.lines().enumerate() {
        if let Some(i) = line.find(needle) {
            return (line[..i].chars().count() as u16, y as u16);
        }
    }
    panic!("{needle:?} not on screen:\n{text}");
}

/// A node with simulated GPU evidence bound to its own CPU evidence: my
/// verification passes, the gpu row carries the red insecure-simulation
/// label, and the pins row says the consented policy pins no GPU
/// measurement.
#[test]
fn node_pane_shows_the_gpu_and_whether_its_measurements_are_pinned() {
    let fx = fixture();
    let mut st = status(&fx, SessionState::NodeAttested);
    let mut n = node(&fx, true);
    let rd = expected_report_data(&n.node_key, &n.hpke_key, &fx.manifest.hash().0);
    n.gpu = Some(sealroom_protocol::api::GpuRegistration {
        kind: TeeKind::Sim,
        evidence: sealroom_reports::attest::simulate::simulate_gpu_at(
            &sealroom_reports::binding::gpu_nonce_for(&rd),
            sealroom_member::now(),
        ),
        certs: vec![],
    });
    st.node = Some(n);
    let app = detail_app(&fx, st, Pane::Node);
    let v = app.detail.as_ref().unwrap().my_verdict.clone().unwrap();
    assert!(v.verified, "{:?}", v.failure);
    let (t, buf) = render(&app, 120, 30);
    let (x, y) = find(&t, "gpu         sim");
    assert!(t.contains("gpu pins    GPU measurements not pinned"), "{t}");
    // The gpu row's label is red, like the CPU's.
    let row: String = t.lines().nth(y as usize).unwrap().to_string();
    let label = row[..row.find("insecure-simulation").unwrap()]
        .chars()
        .count() as u16;
    assert!(label > x);
    assert_eq!(buf[(label, y)].bg, Color::Red);
}

#[test]
fn node_pane_rejected_by_me_shows_the_failed_check_and_grant_stays_disabled() {
    let fx = fixture();
    let mut st = status(&fx, SessionState::NodeAttested);
    st.node = Some(node(&fx, false));
    st.coordinator_verdict = Some(serde_json::json!({"verified": true}));
    let mut app = detail_app(&fx, st, Pane::Node);
    let v = app.detail.as_ref().unwrap().my_verdict.clone().unwrap();
    assert!(!v.verified);
    let check = v.failure.unwrap().check;
    let (t, _) = render(&app, 100, 30);
    assert!(
        t.contains("REJECTED") && t.contains(&format!("failed check {check}")),
        "{t}"
    );
    assert!(t.contains("DISABLED: my verification failed"), "{t}");
    key(&mut app, KeyCode::Char('g'));
    assert_eq!(app.modal, Modal::None);
    let (t, _) = render(&app, 100, 30);
    assert!(
        t.contains(&format!(
            "grant disabled: my verification of the node failed: {check}"
        )),
        "{t}"
    );
    // The overview's next step says so too.
    key(&mut app, KeyCode::Char('1'));
    let mut st = app.detail.as_ref().unwrap().status.clone();
    st.members[0].consented = true;
    st.members[0].blob_uploaded = Some(true);
    app.apply(Msg::Detail(Box::new(detail_of(st))));
    let (t, _) = render(&app, 100, 30);
    assert!(
        t.contains(&format!(
            "grant disabled: your verification failed ({check})"
        )),
        "{t}"
    );
}

#[test]
fn reports_pane_shows_tx_hashes_pending_and_the_verifier_outcome() {
    let fx = fixture();
    let mut st = status(&fx, SessionState::Completed);
    st.node = Some(node(&fx, true));
    st.reports = vec![
        ReportRecord {
            kind: "opened".into(),
            report_abi: "00".into(),
            signature: "00".repeat(64),
            report_hash: B256::repeat_byte(0x42),
            tx_hash: Some(format!("0x{}", "ab".repeat(32))),
            block: Some(3),
            gas_used: Some(215_730),
        },
        ReportRecord {
            kind: "completed".into(),
            report_abi: "00".into(),
            signature: "00".repeat(64),
            report_hash: B256::repeat_byte(0x43),
            tx_hash: None,
            block: None,
            gas_used: None,
        },
    ];
    let app = detail_app(&fx, st, Pane::Reports);
    let (t, _) = render(&app, 80, 24);
    for s in [
        "opened",
        "hash 4242424242424242…42424242  block 3  gas 215730",
        &format!("tx      0x{}", "ab".repeat(32)),
        "completed",
        "pending publication",
        "NOT VERIFIED",
        "failed check report.decode",
        "insecure-simulation",
    ] {
        assert!(t.contains(s), "missing {s:?} in\n{t}");
    }
}

#[test]
fn reports_pane_before_any_report_and_after_an_abort() {
    let fx = fixture();
    let mut st = status(&fx, SessionState::Aborted);
    st.abort_reason = Some("hospital-b withdrew consent".into());
    let app = detail_app(&fx, st, Pane::Reports);
    let (t, _) = render(&app, 80, 24);
    assert!(t.contains("No reports yet"), "{t}");
    assert!(t.contains("aborted  hospital-b withdrew consent"), "{t}");
    assert!(t.contains("aborted"), "{t}");
}

#[test]
fn progress_shows_metrics_only_when_the_manifest_makes_them_public() {
    let progress = serde_json::json!({"phase": "training", "epoch": 12, "epochs": 60, "metrics": {"epoch": 12, "train_loss": 0.25, "val_loss": 0.3, "val_accuracy": 0.9}});
    for public in [false, true] {
        let fx = fixture_with(public);
        let mut st = status(&fx, SessionState::Training);
        st.progress = Some(progress.clone());
        let app = detail_app(&fx, st, Pane::Overview);
        let (t, _) = render(&app, 80, 24);
        assert!(t.contains("training epoch 12/60 [##..........] "), "{t}");
        assert_eq!(
            t.contains("loss 0.250 val loss 0.300 val acc 0.900"),
            public,
            "{t}"
        );
    }
}

#[test]
fn help_overlay_lists_every_key() {
    let fx = fixture();
    let mut app = app_for(&fx, Theme { color: true });
    key(&mut app, KeyCode::Char('?'));
    assert_eq!(app.modal, Modal::Help);
    let (t, _) = render(&app, 80, 24);
    for (k, what) in KEYMAP {
        assert!(
            t.contains(k) && t.contains(what),
            "missing {k} {what} in\n{t}"
        );
    }
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.modal, Modal::None);
}

#[test]
fn consent_and_withdraw_confirmations_show_what_is_signed_and_cancel_signs_nothing() {
    let fx = fixture();
    let st = status(&fx, SessionState::Open);
    let mut app = detail_app(&fx, st, Pane::Overview);
    key(&mut app, KeyCode::Char('c'));
    let (t, _) = render(&app, 100, 30);
    assert!(
        t.contains("CONSENT (signed: \"sealroom.consent.v1\" || 1 || manifest)"),
        "{t}"
    );
    assert!(
        t.contains(&format!("manifest  {:#x}", fx.manifest.hash())),
        "{t}"
    );
    assert!(t.contains("member    party hospital-a"), "{t}");
    let eff = key(&mut app, KeyCode::Char('n'));
    assert!(eff.is_empty());
    let (t, _) = render(&app, 100, 30);
    assert!(
        t.contains("consent cancelled; nothing was signed or sent"),
        "{t}"
    );

    key(&mut app, KeyCode::Char('w'));
    let (t, _) = render(&app, 100, 30);
    assert!(
        t.contains("WITHDRAW consent") && t.contains("a withdrawal aborts the session"),
        "{t}"
    );
    let eff = key(&mut app, KeyCode::Enter);
    assert!(matches!(
        eff.as_slice(),
        [Effect::Run(Action::Consent(ConsentAction::Withdraw), _)]
    ));
}

#[test]
fn upload_prompt_edits_the_path_and_shows_the_commitment_it_must_match() {
    let fx = fixture();
    let st = status(&fx, SessionState::Open);
    let mut app = detail_app(&fx, st, Pane::Overview);
    key(&mut app, KeyCode::Char('u'));
    typed(&mut app, "/data/a.sealedX");
    key(&mut app, KeyCode::Backspace);
    // Enter asks the worker to read the file itself.
    let eff = key(&mut app, KeyCode::Enter);
    let path = PathBuf::from("/data/a.sealed");
    assert!(matches!(eff.as_slice(), [Effect::CheckFile(p)] if *p == path));
    let (t, _) = render(&app, 100, 30);
    assert!(t.contains("UPLOAD my encrypted blob"), "{t}");
    assert!(
        t.contains("file      /data/a.sealed\n") || t.contains("file      /data/a.sealed "),
        "{t}"
    );
    let c = commitment(1);
    assert!(t.contains("manifest  1001 bytes, sha256 "), "{t}");
    assert!(
        t.contains(&format!("          {:#x}", c.ciphertext_sha256)),
        "{t}"
    );
    assert!(t.contains("this file reading…"), "{t}");
    // y waits while the file is being read.
    assert!(key(&mut app, KeyCode::Char('y')).is_empty());
    assert!(matches!(app.modal, Modal::Confirm { .. }));
    let (t, _) = render(&app, 100, 30);
    assert!(t.contains("still reading the file"), "{t}");
    app.apply(Msg::FileCheck {
        path: path.clone(),
        check: FileCheck::Reading {
            done: 400,
            total: 1001,
        },
    });
    let (t, _) = render(&app, 100, 30);
    assert!(t.contains("this file reading… 400/1001 bytes"), "{t}");
    // Read: its own length and hash, beside the manifest's, and they match.
    app.apply(Msg::FileCheck {
        path: path.clone(),
        check: FileCheck::Read {
            len: c.ciphertext_len,
            sha256: c.ciphertext_sha256,
        },
    });
    let (t, _) = render(&app, 100, 30);
    assert!(t.contains("this file 1001 bytes, sha256 "), "{t}");
    assert!(
        t.contains("length and sha256 MATCH the manifest's commitment"),
        "{t}"
    );
    let eff = key(&mut app, KeyCode::Char('y'));
    assert!(matches!(
        eff.as_slice(),
        [Effect::Run(Action::Upload(_), _)]
    ));
    // The grant prompt then suggests the blob's data key.
    app.apply(Msg::Done(Ok("uploaded".into())));
    let mut st = app.detail.as_ref().unwrap().status.clone();
    st.node = Some(node(&fx, true));
    app.apply(Msg::Detail(Box::new(detail_of(st))));
    key(&mut app, KeyCode::Char('g'));
    assert_eq!(
        app.modal,
        Modal::Prompt {
            purpose: crate::app::PromptFor::DataKey,
            input: "/data/a.sealed.datakey".into()
        }
    );
    // Esc leaves the prompt without doing anything.
    assert!(key(&mut app, KeyCode::Esc).is_empty());
    assert_eq!(app.modal, Modal::None);
}

/// The worker reads the chosen file itself (its length and SHA-256, in
/// bounded memory); a file that is not the committed blob is refused before
/// anything is sent, naming which value differs.
#[test]
fn upload_of_a_file_unlike_the_manifests_blob_is_refused_naming_what_differs() {
    let fx = fixture();
    let dir = tempfile::tempdir().unwrap();
    let c = commitment(1);
    // (contents, what the refusal names, what it must not name)
    let cases: [(Vec<u8>, &str, &str, &str); 3] = [
        (
            b"hello".to_vec(),
            "length and sha256 differ",
            "length (5 bytes; the manifest says 1001 bytes) and sha256 (0x2cf24dba",
            "",
        ),
        (
            vec![0u8; 1001],
            "sha256 differs",
            "in sha256 (0x",
            "length (",
        ),
        (
            vec![0u8; 1002],
            "length and sha256 differ",
            "length (1002 bytes; the manifest says 1001 bytes)",
            "",
        ),
    ];
    for (i, (bytes, shown, refusal, not)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("blob{i}"));
        std::fs::write(&path, bytes).unwrap();
        let mut app = detail_app(&fx, status(&fx, SessionState::Open), Pane::Overview);
        key(&mut app, KeyCode::Char('u'));
        typed(&mut app, path.to_str().unwrap());
        let eff = key(&mut app, KeyCode::Enter);
        let [Effect::CheckFile(p)] = eff.as_slice() else {
            panic!("{eff:?}")
        };
        let (tx, rx) = std::sync::mpsc::channel();
        crate::worker::check_file(p.clone(), &tx);
        for m in rx.try_iter() {
            app.apply(m);
        }
        let (t, _) = render(&app, 120, 30);
        let sha = sealroom_member::hash_file(&path, &|_, _, _| {}).unwrap().1;
        assert!(
            t.contains(&format!("this file {} bytes, sha256 ", bytes.len()))
                && t.contains(&format!("          {sha:#x}")),
            "{t}"
        );
        assert!(
            t.contains(&format!("DIFFERS from the manifest: {shown}; y refuses")),
            "{t}"
        );
        assert!(
            t.contains(&format!("          {:#x}", c.ciphertext_sha256)),
            "{t}"
        );
        assert!(
            key(&mut app, KeyCode::Char('y')).is_empty(),
            "nothing is sent"
        );
        assert_eq!(app.modal, Modal::None);
        let (ok, m) = app.message.clone().unwrap();
        assert!(!ok);
        assert!(
            m.starts_with("upload refused before sending:") && m.contains(refusal),
            "{m}"
        );
        assert!(not.is_empty() || m.contains("nothing was sent"), "{m}");
        if !not.is_empty() {
            assert!(!m.contains(not), "{m}");
        }
    }
    // A file that cannot be read is refused too.
    let mut app = detail_app(&fx, status(&fx, SessionState::Open), Pane::Overview);
    key(&mut app, KeyCode::Char('u'));
    let missing = dir.path().join("missing.sealed");
    typed(&mut app, missing.to_str().unwrap());
    key(&mut app, KeyCode::Enter);
    let (tx, rx) = std::sync::mpsc::channel();
    crate::worker::check_file(missing.clone(), &tx);
    for m in rx.try_iter() {
        app.apply(m);
    }
    let (t, _) = render(&app, 120, 30);
    assert!(t.contains("this file cannot be read"), "{t}");
    assert!(key(&mut app, KeyCode::Char('y')).is_empty());
    assert!(
        app.message
            .as_ref()
            .is_some_and(|(_, m)| m.starts_with("upload refused:")),
        "{:?}",
        app.message
    );
    // And the values the blob's own reading gives are what upload checks.
    let good = dir.path().join("good");
    std::fs::write(&good, b"hello").unwrap();
    let (len, sha) = sealroom_member::hash_file(&good, &|_, _, _| {}).unwrap();
    assert_eq!(len, 5);
    assert_eq!(
        format!("{sha:x}"),
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    );
}

#[test]
fn long_messages_wrap_instead_of_being_cut_at_the_screen_edge() {
    let fx = fixture();
    let mut app = detail_app(&fx, status(&fx, SessionState::Open), Pane::Overview);
    let hash = format!("{:#x}", B256::repeat_byte(0xab));
    let long = format!(
        "grant refused: my verification of the node failed: report-data: evidence report_data {hash} is not the expected value for this manifest; nothing was sent END"
    );
    app.apply(Msg::Done(Err(long.clone())));
    let (t, _) = render(&app, 80, 24);
    // Every word is on screen, the hash cut only where a line ends.
    let screen: String = t.lines().map(str::trim).collect::<Vec<_>>().join(" ");
    for w in long.split(' ').filter(|w| w.len() < 60) {
        assert!(screen.contains(w), "missing {w:?} in\n{t}");
    }
    assert!(screen.contains(&hash[..60]), "{t}");
    assert!(t.contains("nothing was sent END"), "{t}");
    // The footer is still the last line, the header the first.
    let lines: Vec<&str> = t.lines().collect();
    assert!(lines[23].contains("? help"), "{t}");
    assert!(lines[0].contains("sealroom"), "{t}");
    // Wrapping itself: by words, long words cut, one-column continuation indent.
    assert_eq!(
        crate::ui::wrap_words(" aaa bbb ccc", 8),
        vec![" aaa bbb", " ccc"]
    );
    assert_eq!(
        crate::ui::wrap_words(" 0123456789", 6),
        vec![" 01234", " 56789"]
    );
    assert_eq!(crate::ui::wrap_words(" short", 80), vec![" short"]);
    // A tiny screen still draws.
    render(&app, 10, 3);
}

#[test]
fn the_export_dialog_says_it_writes_a_file_and_signs_and_sends_nothing() {
    let fx = fixture();
    let mut app = detail_app(&fx, status(&fx, SessionState::Open), Pane::Overview);
    key(&mut app, KeyCode::Char('e'));
    key(&mut app, KeyCode::Enter);
    let (t, _) = render(&app, 100, 30);
    for want in [
        "Export: write a file (nothing is signed or sent)",
        "EXPORT the offline bundle JSON (sealroom-bundle/2) to a file",
        "write to  breast-cancer-3-hospitals-bundle.json",
        "signed    nothing: this reads the status and writes the file; nothing is sent",
        " y write the file ",
    ] {
        assert!(t.contains(want), "missing {want:?} in\n{t}");
    }
    for not in ["exactly what will be signed", "sign and send"] {
        assert!(!t.contains(not), "{not:?} in\n{t}");
    }
    key(&mut app, KeyCode::Char('n'));
    let (t, _) = render(&app, 100, 30);
    assert!(t.contains("export cancelled; nothing was written"), "{t}");
    // The signing dialogs keep their title.
    key(&mut app, KeyCode::Char('c'));
    let (t, _) = render(&app, 100, 30);
    assert!(
        t.contains("Confirm: exactly what will be signed and sent"),
        "{t}"
    );
    assert!(t.contains(" y sign and send "), "{t}");
}

#[test]
fn busy_progress_and_results_show_on_the_message_line() {
    let fx = fixture();
    let st = status(&fx, SessionState::Open);
    let mut app = detail_app(&fx, st, Pane::Overview);
    app.apply(Msg::Progress(Busy {
        label: "reading and checking the blob".into(),
        done: 50,
        total: 100,
    }));
    let (t, _) = render(&app, 80, 24);
    assert!(
        t.contains("reading and checking the blob [##########..........] 50/100 bytes"),
        "{t}"
    );
    app.apply(Msg::Done(Err(
        "coordinator: 409 conflict: blob already uploaded".into(),
    )));
    let (t, _) = render(&app, 80, 24);
    assert!(
        t.contains("coordinator: 409 conflict: blob already uploaded"),
        "{t}"
    );
    assert!(app.busy.is_none());
}

#[test]
fn owner_model_fetch_is_enabled_only_once_published() {
    let fx = fixture();
    let owner_app = |state| {
        let st = status(&fx, state);
        let mut app = App::new(fx.owner.public(), "http://x", Theme { color: false });
        app.screen = Screen::Detail;
        app.watched = Some(st.session_id);
        app.apply(Msg::Detail(Box::new(detail_of(st))));
        app
    };
    let mut app = owner_app(SessionState::Completed);
    key(&mut app, KeyCode::Char('m'));
    assert_eq!(app.modal, Modal::None);
    let (t, _) = render(&app, 80, 24);
    assert!(
        t.contains("fetch model: released once both reports are on chain (state is completed)"),
        "{t}"
    );

    let mut app = owner_app(SessionState::Published);
    key(&mut app, KeyCode::Char('m'));
    key(&mut app, KeyCode::Enter);
    let (t, _) = render(&app, 100, 30);
    assert!(
        t.contains("FETCH the sealed model")
            && t.contains("breast-cancer-3-hospitals.model (mode 0600)"),
        "{t}"
    );

    // A party may not.
    let mut app = detail_app(&fx, status(&fx, SessionState::Published), Pane::Overview);
    key(&mut app, KeyCode::Char('m'));
    let (t, _) = render(&app, 80, 24);
    assert!(t.contains("only the model owner can open the model"), "{t}");
    // Export is open to anyone, with a default file name.
    key(&mut app, KeyCode::Char('e'));
    assert_eq!(
        app.modal,
        Modal::Prompt {
            purpose: crate::app::PromptFor::ExportOut,
            input: "breast-cancer-3-hospitals-bundle.json".into()
        }
    );
}

#[test]
fn no_color_uses_no_colours_anywhere() {
    let fx = fixture();
    let mut st = status(&fx, SessionState::NodeAttested);
    st.node = Some(node(&fx, true));
    let mut app = detail_app(&fx, st, Pane::Node);
    app.theme = Theme { color: false };
    let (t, buf) = render(&app, 80, 24);
    assert!(t.contains("insecure-simulation"), "{t}");
    for cell in buf.content() {
        assert_eq!(cell.fg, Color::Reset);
        assert_eq!(cell.bg, Color::Reset);
    }
    // Still marked without colour: reversed and bold.
    let (x, y) = find(&t, "insecure-simulation");
    assert!(buf[(x, y)]
        .modifier
        .contains(ratatui::style::Modifier::REVERSED));
}

#[test]
fn resizes_cleanly_from_tiny_to_large() {
    let fx = fixture();
    let mut st = status(&fx, SessionState::Training);
    st.node = Some(node(&fx, true));
    st.progress = Some(serde_json::json!({"phase": "training", "epoch": 1, "epochs": 60}));
    for pane in Pane::ALL {
        let mut app = detail_app(&fx, st.clone(), pane);
        for (w, h) in [(80, 24), (20, 6), (1, 1), (200, 60), (80, 24)] {
            render(&app, w, h);
        }
        key(&mut app, KeyCode::Char('?'));
        render(&app, 30, 8);
        let (t, _) = render(&app, 120, 40);
        assert!(t.contains("Keys"), "{t}");
    }
}

#[test]
fn quit_keys() {
    let fx = fixture();
    let mut app = app_for(&fx, Theme { color: true });
    key(&mut app, KeyCode::Char('q'));
    assert!(app.quit);
    // From the help overlay too (it says so).
    let mut app = app_for(&fx, Theme { color: true });
    key(&mut app, KeyCode::Char('?'));
    let (t, _) = render(&app, 80, 24);
    assert!(t.contains("press ? or Esc to close · q quits"), "{t}");
    key(&mut app, KeyCode::Char('q'));
    assert!(app.quit);
    // Not while typing a path: there it is a letter.
    let mut app = detail_app(&fx, status(&fx, SessionState::Open), Pane::Overview);
    key(&mut app, KeyCode::Char('e'));
    key(&mut app, KeyCode::Char('q'));
    assert!(!app.quit);
    let mut app = app_for(&fx, Theme { color: true });
    app.handle_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
    assert!(app.quit);
}

#[test]
fn bundle_from_status_needs_a_node_and_a_report() {
    let fx = fixture();
    let mut st = status(&fx, SessionState::Completed);
    assert!(crate::worker::bundle_from_status(&st).is_none());
    st.node = Some(node(&fx, true));
    assert!(crate::worker::bundle_from_status(&st).is_none());
    st.reports.push(ReportRecord {
        kind: "completed".into(),
        report_abi: "00".into(),
        signature: "00".into(),
        report_hash: B256::ZERO,
        tx_hash: None,
        block: None,
        gas_used: None,
    });
    st.reports.push(ReportRecord {
        kind: "opened".into(),
        ..st.reports[0].clone()
    });
    let b = crate::worker::bundle_from_status(&st).unwrap();
    assert_eq!(b.format, sealroom_reports::verifier::BUNDLE_FORMAT);
    assert_eq!(b.reports[0].kind, "opened");
    assert_eq!(b.envelope.manifest, fx.manifest);
}

#[test]
fn node_pane_shows_leases_a_lost_node_and_the_replacement_and_abort_is_offered_until_completed() {
    use sealroom_protocol::api::{Attempt, AttemptOutcome};
    let fx = fixture();
    let now = sealroom_member::now() as u64;
    let lost = node(&fx, true);
    let mut st = status(&fx, SessionState::NodeLost);
    for m in &mut st.members {
        m.consented = true;
        m.blob_uploaded = m.blob_uploaded.map(|_| true);
        m.granted = m.granted.map(|_| false);
    }
    st.lease_s = Some(120);
    st.attempts = vec![Attempt {
        number: 1,
        node: lost.clone(),
        outcome: AttemptOutcome::Lost,
        registered_at: now - 60,
        last_seen: now - 30,
        lease_expires: None,
        lost_at: Some(now - 5),
        opened_report_hash: Some(B256::repeat_byte(7)),
    }];
    let mut app = detail_app(&fx, st.clone(), Pane::Node);
    let (t, _) = render(&app, 100, 30);
    assert!(
        t.contains("was LOST; waiting for a replacement node"),
        "{t}"
    );
    assert!(t.contains("attempts (lease 120 s)"), "{t}");
    assert!(
        t.contains("#1") && t.contains("LOST") && t.contains("after signing opened"),
        "{t}"
    );
    let (t, _) = render(&detail_app(&fx, st.clone(), Pane::Overview), 100, 30);
    assert!(t.contains("node LOST: waiting for a replacement"), "{t}");

    // The replacement holds it under a running lease; the lost one stays listed.
    let mut replacement = node(&fx, true);
    replacement.node_key = [0x22; 32];
    st.state = SessionState::Training;
    st.node = Some(replacement.clone());
    st.attempts.push(Attempt {
        number: 2,
        node: replacement,
        outcome: AttemptOutcome::Active,
        registered_at: now - 3,
        last_seen: now,
        lease_expires: Some(now + 100),
        lost_at: None,
        opened_report_hash: None,
    });
    app = detail_app(&fx, st.clone(), Pane::Node);
    let (t, _) = render(&app, 100, 40);
    assert!(
        t.contains("#2") && t.contains("holds the session") && t.contains("lease expires in"),
        "{t}"
    );
    assert!(t.contains("#1") && t.contains("LOST"), "{t}");

    // Abort while training: the confirmation says what it does.
    key(&mut app, KeyCode::Char('a'));
    let (t, _) = render(&app, 100, 30);
    assert!(
        t.contains("WITHDRAW consent") && t.contains("a node that is training stops"),
        "{t}"
    );
    let eff = key(&mut app, KeyCode::Enter);
    assert!(matches!(
        eff.as_slice(),
        [Effect::Run(Action::Consent(ConsentAction::Withdraw), _)]
    ));

    // Not once the model is done.
    st.state = SessionState::Published;
    let mut app = detail_app(&fx, st, Pane::Overview);
    key(&mut app, KeyCode::Char('a'));
    assert_eq!(app.modal, Modal::None);
    let (t, _) = render(&app, 100, 30);
    assert!(t.contains("abort: the session is already published"), "{t}");
}

/// After a fail-over, each node attempt's first report carries that
/// attempt's registration as its envelope (the first one at the top level).
#[test]
fn bundle_from_status_places_each_attempts_evidence() {
    use sealroom_protocol::api::{Attempt, AttemptOutcome};
    use sealroom_reports::report::{IntegrityReport, ReportKind};
    let fx = fixture();
    let mut st = status(&fx, SessionState::Completed);
    let lost = node(&fx, true);
    let mut replacement = node(&fx, true);
    replacement.node_key = [0x22; 32];
    let record = |kind: ReportKind, node_key: [u8; 32], prev: B256| {
        let r = IntegrityReport {
            version: sealroom_reports::report::REPORT_VERSION,
            kind: kind as u8,
            sessionId: fx.manifest.session_id,
            manifestHash: fx.manifest.hash(),
            inputsRoot: B256::ZERO,
            prevReportHash: prev,
            nodeKey: node_key.into(),
            nodeHpkeKey: B256::ZERO,
            evidenceHash: B256::ZERO,
            teeKind: 3,
            insecureSimulation: true,
            modelHash: B256::ZERO,
            sealedModelHash: B256::ZERO,
            ownerKey: B256::ZERO,
            trainingSummaryHash: B256::ZERO,
            seed: 0,
            dataOrderCommitment: B256::ZERO,
            inputsWiped: kind == ReportKind::Completed,
            abortCode: 0,
            abortReason: String::new(),
            timestamp: 0,
            privacy: Default::default(),
        };
        ReportRecord {
            kind: kind.as_str().into(),
            report_abi: hex::encode(r.abi_bytes()),
            signature: "00".repeat(64),
            report_hash: r.report_hash(),
            tx_hash: None,
            block: None,
            gas_used: None,
        }
    };
    let o1 = record(ReportKind::Opened, lost.node_key, B256::ZERO);
    let o2 = record(ReportKind::Opened, replacement.node_key, o1.report_hash);
    let done = record(ReportKind::Completed, replacement.node_key, o2.report_hash);
    st.reports = vec![o1, o2, done];
    let attempt = |number, node: &NodeRegistration, outcome| Attempt {
        number,
        node: node.clone(),
        outcome,
        registered_at: 0,
        last_seen: 0,
        lease_expires: None,
        lost_at: None,
        opened_report_hash: None,
    };
    st.attempts = vec![
        attempt(1, &lost, AttemptOutcome::Lost),
        attempt(2, &replacement, AttemptOutcome::Finished),
    ];
    st.node = Some(replacement.clone());
    let b = crate::worker::bundle_from_status(&st).unwrap();
    assert_eq!(
        b.envelope.evidence, lost.evidence,
        "attempt 1 at the top level"
    );
    assert_eq!(b.reports[0].envelope, None);
    let second = b.reports[1]
        .envelope
        .as_ref()
        .expect("attempt 2's envelope");
    assert_eq!(second.evidence, replacement.evidence);
    assert_eq!(second.manifest, fx.manifest);
    assert_eq!(
        b.reports[2].envelope, None,
        "a node's later reports carry none"
    );
}
