//! Rendering: pure functions of [`App`] into a ratatui frame. Every screen
//! keeps to one line of header, tabs, a body, a progress/message line and a
//! key-hint footer, so it stays readable at 80x24 and reflows on resize.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Table, Wrap};
use ratatui::Frame;
use sealroom_protocol::api::{AttemptOutcome, MemberStatus, SessionState};
use sealroom_protocol::policy::TeeKind;

use crate::app::{my_input, role_in, App, Conn, Detail, Modal, Pane, PromptFor, Screen};
use crate::theme::Theme;

/// Every key, for the help overlay and docs/tui.md.
pub const KEYMAP: &[(&str, &str)] = &[
    ("?", "show / hide this help"),
    (
        "q, Ctrl-C",
        "quit (from the help too; not while typing a path)",
    ),
    ("r", "refresh now"),
    ("Up/Down, k/j", "sessions: move the selection"),
    ("Enter", "sessions: open the session"),
    ("Esc, Left", "session: back to the sessions list"),
    ("Tab, Shift-Tab", "session: next / previous pane"),
    ("1 2 3 4", "session: Overview, Members, Node, Reports pane"),
    ("c", "consent: sign my consent over the manifest hash"),
    (
        "w, a",
        "withdraw consent: abort the session (until completed)",
    ),
    ("u", "upload my encrypted blob (path prompt)"),
    ("g", "grant my data key (only when MY verification passed)"),
    ("m", "owner: fetch and open the model to a path"),
    (
        "e",
        "export the offline bundle JSON to a path (nothing signed)",
    ),
    (
        "y / Enter",
        "dialog: go (sign and send; for e: write the file)",
    ),
    (
        "n / Esc",
        "dialog: cancel (nothing is signed, sent or written)",
    ),
    ("Ctrl-U", "prompt: clear the path"),
];

const SPINNER: [char; 4] = ['|', '/', '-', '\\'];

/// Draws the whole UI.
pub fn draw(f: &mut Frame, app: &App) {
    let area = f.area();
    // The message area grows with a long message (a refusal names the check
    // and both hashes), up to a third of the body, rather than cutting it.
    let wrapped = message_lines(app, area.width);
    let most = (area.height.saturating_sub(4) / 3).max(1);
    let message_h = (wrapped.len() as u16).clamp(1, most);
    let [header, body, status, message, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(1),
        Constraint::Length(message_h),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header(f, app, header);
    match app.screen {
        Screen::List => draw_list(f, app, body),
        Screen::Detail => draw_detail(f, app, body),
    }
    draw_status(f, app, status);
    draw_message(f, app, message, wrapped);
    draw_footer(f, app, footer);
    match &app.modal {
        Modal::None => {}
        Modal::Help => draw_help(f, app, area),
        Modal::Prompt { purpose, input } => draw_prompt(f, app, area, *purpose, input),
        Modal::Confirm { action, lines } => draw_confirm(f, app, area, action, lines),
    }
}

fn state_style(t: Theme, s: SessionState) -> Style {
    match s {
        SessionState::Aborted => t.bad(),
        SessionState::Completed | SessionState::Published | SessionState::Delivered => t.ok(),
        _ => t.pending(),
    }
}

fn draw_header(f: &mut Frame, app: &App, area: Rect) {
    let t = app.theme;
    let conn = match &app.conn {
        Conn::Connecting => Span::styled("connecting…", t.pending()),
        Conn::Up { live: true } => Span::styled("live", t.ok()),
        Conn::Up { live: false } => Span::styled("polling", t.ok()),
        Conn::Down { retry_ms, .. } => Span::styled(
            format!("unreachable, retry {:.1}s", *retry_ms as f64 / 1000.0),
            t.bad(),
        ),
    };
    let line = Line::from(vec![
        Span::styled(" sealroom ", t.title()),
        Span::raw(format!("{} ", app.coordinator)),
        Span::styled(format!("me {} ", app.me.fingerprint()), t.dim()),
        conn,
    ]);
    f.render_widget(Paragraph::new(line), area);
}

fn draw_list(f: &mut Frame, app: &App, area: Rect) {
    let t = app.theme;
    let block = Block::default()
        .borders(Borders::ALL)
        .title(Span::styled(" Sessions ", t.title()));
    if app.sessions.is_empty() {
        let text = match &app.conn {
            Conn::Down { error, .. } => format!("Coordinator unreachable: {error}"),
            Conn::Connecting => "Connecting to the coordinator…".into(),
            Conn::Up { .. } => "No sessions on this coordinator yet.".into(),
        };
        f.render_widget(
            Paragraph::new(text).wrap(Wrap { trim: true }).block(block),
            area,
        );
        return;
    }
    // Two lines a session: name, state, my role and id; then how far the
    // members are, step by step (a single "ready" count reads 0 while
    // members are halfway, and the step counts do not fit one 80-column line).
    let inner = block.inner(area);
    let width = usize::from(inner.width);
    let (state_w, role_w, id_w) = (15usize, 17usize, 8usize);
    let name_w = width.saturating_sub(2 + state_w + role_w + id_w + 3);
    let cols = |name: &str, state: &str, role: &str, id: &str| {
        format!(
            "{name:<name_w$.name_w$} {state:<state_w$.state_w$} {role:<role_w$.role_w$} {id:<id_w$.id_w$}"
        )
    };
    let mut lines = vec![Line::from(Span::styled(
        format!("  {}", cols("Name", "State", "My role", "Id")),
        t.title(),
    ))];
    let fits = usize::from(inner.height).saturating_sub(1) / 2;
    let first = (app.selected + 1).saturating_sub(fits.max(1));
    for (i, s) in app
        .sessions
        .iter()
        .enumerate()
        .skip(first)
        .take(fits.max(1))
    {
        let sm = &s.summary;
        let selected = i == app.selected;
        let id: String = format!("{:#x}", sm.session_id).chars().take(8).collect();
        // A marker as well as the reversed style: selection must show without colour or styles.
        let marker = if selected { "> " } else { "  " };
        let name = format!("{name:<name_w$.name_w$} ", name = sm.name);
        let mut first_line = vec![
            Span::raw(format!("{marker}{name}")),
            Span::styled(
                format!("{:<state_w$}", sm.state.as_str()),
                state_style(t, sm.state),
            ),
            Span::raw(format!(" {:<role_w$.role_w$} {id}", s.my_role)),
        ];
        let mut second = Line::from(Span::styled(format!("    {}", member_counts(sm)), t.dim()));
        if selected {
            for span in &mut first_line {
                span.style = span.style.patch(t.selected());
            }
            second = second.style(t.selected());
        }
        lines.push(Line::from(first_line));
        lines.push(second);
    }
    f.render_widget(Paragraph::new(lines).block(block), area);
}

/// `consent 2/4 · blobs 2/3 · grants 0/3`: each step on its own, from the
/// list's counts (older coordinators send only the ready count).
pub fn member_counts(sm: &sealroom_protocol::api::SessionSummary) -> String {
    match sm.counts {
        Some(c) => format!(
            "consent {}/{} · blobs {}/{} · grants {}/{}",
            c.consented, sm.total, c.uploaded, c.inputs, c.granted, c.inputs
        ),
        None => format!(
            "ready {}/{} (consented, uploaded and granted)",
            sm.ready, sm.total
        ),
    }
}

fn draw_detail(f: &mut Frame, app: &App, area: Rect) {
    let t = app.theme;
    let [tabs, body] = Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(area);
    let mut spans = vec![];
    for (i, p) in Pane::ALL.iter().enumerate() {
        // Brackets as well as the reversed style, so the current pane shows
        // without colour and in captured text.
        let label = if *p == app.pane {
            format!("[{} {}]", i + 1, p.title())
        } else {
            format!(" {} {} ", i + 1, p.title())
        };
        spans.push(if *p == app.pane {
            Span::styled(label, t.selected())
        } else {
            Span::raw(label)
        });
    }
    if let Some(d) = &app.detail {
        spans.push(Span::raw("  state "));
        spans.push(Span::styled(
            d.status.state.as_str(),
            state_style(t, d.status.state),
        ));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), tabs);
    let title = match &app.detail {
        Some(d) => format!(" {} · {} ", app.pane.title(), d.status.manifest.name),
        None => format!(" {} ", app.pane.title()),
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .title(Span::styled(title, t.title()));
    let Some(d) = &app.detail else {
        f.render_widget(Paragraph::new("Loading the session…").block(block), body);
        return;
    };
    match app.pane {
        Pane::Overview => f.render_widget(
            Paragraph::new(overview_lines(app, d))
                .wrap(Wrap { trim: false })
                .block(block),
            body,
        ),
        Pane::Members => draw_members(f, app, d, body, block),
        Pane::Node => f.render_widget(
            Paragraph::new(node_lines(app, d))
                .wrap(Wrap { trim: false })
                .block(block),
            body,
        ),
        Pane::Reports => f.render_widget(
            Paragraph::new(report_lines(app, d))
                .wrap(Wrap { trim: false })
                .block(block),
            body,
        ),
    }
}

fn kv<'a>(t: Theme, k: &str, v: impl Into<Span<'a>>) -> Line<'a> {
    Line::from(vec![Span::styled(format!("{k:<9}"), t.dim()), v.into()])
}

/// What I should do next in this session, in words.
pub fn next_step(app: &App, d: &Detail) -> (bool, String) {
    let st = &d.status;
    let me = app.me.ed25519;
    let Some(role) = role_in(&st.manifest, &me) else {
        return (
            false,
            "you are not a member of this session (read-only; e exports the bundle)".into(),
        );
    };
    if st.state == SessionState::Aborted {
        return (
            false,
            format!("aborted: {}", st.abort_reason.clone().unwrap_or_default()),
        );
    }
    let Some(mine) = st.members.iter().find(|m| m.key == me) else {
        return (false, format!("{role}: not listed by the coordinator"));
    };
    if !mine.consented {
        return (
            true,
            "press c to review the manifest hash and consent".into(),
        );
    }
    if mine.blob_uploaded == Some(false) {
        return (true, "press u to upload your encrypted blob".into());
    }
    if st.state == SessionState::NodeLost {
        return (
            false,
            "node LOST: waiting for a replacement node (you verify it and grant again; a to abort)"
                .into(),
        );
    }
    if mine.granted == Some(false) {
        return match &d.my_verdict {
            None => (false, "waiting for a node to register".into()),
            Some(v) if v.verified => (
                true,
                "node verified by you: press g to grant your data key".into(),
            ),
            Some(v) => (
                false,
                format!(
                    "grant disabled: your verification failed ({})",
                    v.failure
                        .as_ref()
                        .map(|f| f.check.as_str())
                        .unwrap_or("unknown")
                ),
            ),
        };
    }
    match st.state {
        SessionState::Published | SessionState::Delivered if role == "owner" => (
            true,
            "reports are on chain: press m to fetch and open the model".into(),
        ),
        SessionState::Published | SessionState::Delivered => {
            (true, "done: reports are on chain (pane 4)".into())
        }
        _ => (
            true,
            "nothing to do: waiting for the others and the node".into(),
        ),
    }
}

fn overview_lines<'a>(app: &App, d: &'a Detail) -> Vec<Line<'a>> {
    let t = app.theme;
    let st = &d.status;
    let m = &st.manifest;
    let me = app.me.ed25519;
    let mut v = vec![];
    v.push(kv(
        t,
        "session",
        Span::raw(format!("{} — {}", m.name, m.description)),
    ));
    v.push(Line::from(vec![
        Span::styled(format!("{:<9}", "manifest"), t.dim()),
        Span::raw(format!("{:#x} ", st.manifest_hash)),
        if d.manifest_ok {
            Span::styled("ok", t.ok())
        } else {
            Span::styled("MISMATCH", t.bad())
        },
    ]));
    let role = role_in(m, &me).unwrap_or_else(|| "not a member".into());
    let input = my_input(m, &me)
        .map(|i| format!(", input {i}"))
        .unwrap_or_default();
    v.push(kv(t, "me", Span::raw(format!("{role}{input}"))));
    let (ok, next) = next_step(app, d);
    v.push(kv(
        t,
        "next",
        Span::styled(next, if ok { t.ok() } else { t.pending() }),
    ));
    let target = match m.schema.task {
        sealroom_protocol::scenario::Task::Classification => {
            format!("{} classes", m.schema.label_classes)
        }
        sealroom_protocol::scenario::Task::Regression => "regression".to_string(),
    };
    v.push(kv(
        t,
        "model",
        Span::raw(format!(
            "{}; {} features, {target}",
            m.model.describe(),
            m.schema.features.len(),
        )),
    ));
    v.push(kv(
        t,
        "privacy",
        Span::raw(sealroom_reports::audit::privacy_words(&d.header)),
    ));
    let tr = &m.training;
    v.push(kv(
        t,
        "training",
        Span::raw(format!(
            "{} epochs, batch {}, {:?} lr {}, seed {}, metrics {}",
            tr.epochs,
            tr.batch_size,
            tr.optimizer,
            tr.learning_rate,
            tr.seed,
            if tr.public_metrics {
                "public"
            } else {
                "owner only"
            }
        )),
    ));
    let p = &m.policy;
    let kinds: Vec<&str> = p.accepted_kinds.iter().map(|k| k.as_str()).collect();
    v.push(kv(
        t,
        "policy",
        Span::raw(format!(
            "kinds {}; simulation {}; debug {}; evidence ≤ {} s{}",
            kinds.join(","),
            if p.allow_simulation {
                "ALLOWED"
            } else {
                "refused"
            },
            if p.allow_debug { "allowed" } else { "refused" },
            p.max_evidence_age_s,
            if p.require_gpu { "; GPU required" } else { "" }
        )),
    ));
    v.push(kv(
        t,
        "owner",
        Span::raw(format!(
            "{} ({}), validation set {}",
            m.owner.name,
            m.owner.identity.fingerprint(),
            if m.owner.validation.is_some() {
                "yes"
            } else {
                "no"
            }
        )),
    ));
    v.push(kv(
        t,
        "parties",
        Span::raw(
            m.parties
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        ),
    ));
    // The name is derived from the chain's kind and id (what the
    // coordinator says is only a claim: its free-text label is never shown).
    let chain = st
        .chain
        .as_ref()
        .and_then(|c| {
            let kind = c.get("kind")?.as_str()?;
            let id = c.get("chain_id")?.as_u64()?;
            Some(format!(
                "{} (chain id {id}, as the coordinator reports; the manifest names `{}`)",
                sealroom_reports::verifier::chain_name(kind, id),
                m.chain.target
            ))
        })
        .unwrap_or_else(|| format!("{} (named by the manifest)", m.chain.target));
    v.push(kv(t, "chain", Span::raw(chain)));
    if let Some(r) = &st.abort_reason {
        v.push(kv(t, "aborted", Span::styled(r.clone(), t.bad())));
    }
    v
}

fn flag(t: Theme, f: Option<bool>) -> Cell<'static> {
    match f {
        None => Cell::from(Span::styled("-", t.dim())),
        Some(true) => Cell::from(Span::styled("yes", t.ok())),
        Some(false) => Cell::from(Span::styled("no", t.pending())),
    }
}

fn draw_members(f: &mut Frame, app: &App, d: &Detail, area: Rect, block: Block<'_>) {
    let t = app.theme;
    let header = Row::new(["", "Member", "Role", "Consent", "Blob", "Grant"]).style(t.title());
    let rows = d.status.members.iter().map(|m: &MemberStatus| {
        let consent = if m.withdrawn {
            Cell::from(Span::styled("WITHDRAWN", t.bad()))
        } else {
            flag(t, Some(m.consented))
        };
        Row::new(vec![
            Cell::from(if m.key == app.me.ed25519 { "me" } else { "" }),
            Cell::from(m.name.clone()),
            Cell::from(m.role.clone()),
            consent,
            flag(t, m.blob_uploaded),
            flag(t, m.granted),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(2),
            Constraint::Fill(1),
            Constraint::Length(6),
            Constraint::Length(9),
            Constraint::Length(5),
            Constraint::Length(5),
        ],
    )
    .header(header)
    .block(block);
    f.render_widget(table, area);
}

fn short_hex(b: &[u8]) -> String {
    let h = hex::encode(b);
    if h.len() > 24 {
        format!("{}…{}", &h[..16], &h[h.len() - 8..])
    } else {
        h
    }
}

/// The nodes that held the session: each attempt, its lease or its loss.
fn attempt_lines<'a>(app: &App, d: &'a Detail) -> Vec<Line<'a>> {
    let t = app.theme;
    let st = &d.status;
    let now = sealroom_member::now();
    let mut v = vec![];
    if st.attempts.is_empty() {
        return v;
    }
    v.push(Line::from(Span::styled(
        format!(
            "attempts (lease {} s)",
            st.lease_s
                .map(|s| s.to_string())
                .unwrap_or_else(|| "?".into())
        ),
        t.title(),
    )));
    for a in &st.attempts {
        let (label, style, when) = match a.outcome {
            AttemptOutcome::Active => (
                "holds the session",
                t.ok(),
                a.lease_expires
                    .map(|e| format!("lease expires in {} s", (e as i64 - now).max(0)))
                    .unwrap_or_default(),
            ),
            AttemptOutcome::Lost => (
                "LOST",
                t.bad(),
                format!(
                    "no heartbeat; declared lost {} s ago{}",
                    (now - a.lost_at.unwrap_or(0) as i64).max(0),
                    if a.opened_report_hash.is_some() {
                        " after signing opened (on chain)"
                    } else {
                        ""
                    }
                ),
            ),
            AttemptOutcome::Finished => ("finished", t.dim(), String::new()),
        };
        v.push(Line::from(vec![
            Span::raw(format!("  #{} {} ", a.number, short_hex(&a.node.node_key))),
            Span::styled(label, style),
            Span::raw(format!(" {when}")),
        ]));
    }
    v
}

fn node_lines<'a>(app: &App, d: &'a Detail) -> Vec<Line<'a>> {
    let t = app.theme;
    let st = &d.status;
    let Some(n) = &st.node else {
        let mut v = vec![];
        if st.state == SessionState::NodeLost {
            v.push(Line::from(Span::styled(
                "The node holding the session was LOST; waiting for a replacement node.",
                t.bad(),
            )));
            v.push(Line::from("My grant was sealed to the lost node's key only; I verify the replacement and grant again."));
        } else {
            v.push(Line::from("No node has registered yet."));
            v.push(Line::from("Grant stays disabled until a node registers and MY verification of its evidence passes."));
        }
        v.extend(attempt_lines(app, d));
        return v;
    };
    let mut v = vec![];
    let mut kind = vec![
        Span::styled(format!("{:<12}", "kind"), t.dim()),
        Span::raw(format!("{} ", n.kind)),
    ];
    if n.kind == TeeKind::Sim {
        kind.push(Span::styled(" insecure-simulation ", t.danger()));
    }
    v.push(Line::from(kind));
    // Composite evidence: the GPU the node claims, checked with the CPU
    // evidence by my own verification (its nonce binds it to this node).
    let mut gpu = vec![Span::styled(format!("{:<12}", "gpu"), t.dim())];
    match &n.gpu {
        None => gpu.push(Span::raw("none (no GPU evidence)")),
        Some(g) if g.kind == TeeKind::Sim => {
            gpu.push(Span::raw("sim "));
            gpu.push(Span::styled(" insecure-simulation ", t.danger()));
        }
        Some(g) => gpu.push(Span::raw(format!(
            "{} (nonce bound to this node's evidence)",
            g.kind
        ))),
    }
    v.push(Line::from(gpu));
    // Whether the consented policy pins the GPU's measurements.
    if n.gpu.is_some() || st.manifest.policy.require_gpu {
        v.push(Line::from(vec![
            Span::styled(format!("{:<12}", "gpu pins"), t.dim()),
            Span::raw(sealroom_reports::policy_eval::gpu_pin_words(
                &st.manifest.policy,
            )),
        ]));
    }
    let row = |k: &str, val: String| {
        Line::from(vec![
            Span::styled(format!("{k:<12}"), t.dim()),
            Span::raw(val),
        ])
    };
    v.push(row("node key", short_hex(&n.node_key)));
    v.push(row("hpke key", short_hex(&n.hpke_key)));
    let allowed = st
        .manifest
        .engine
        .trainer_measurements
        .iter()
        .any(|m| m.eq_ignore_ascii_case(&n.engine_measurement));
    v.push(Line::from(vec![
        Span::styled(format!("{:<12}", "engine"), t.dim()),
        Span::raw(format!(
            "{} ",
            short_hex(&hex::decode(&n.engine_measurement).unwrap_or_default())
        )),
        if st.manifest.engine.trainer_measurements.is_empty() {
            Span::styled("(no allowlist)", t.pending())
        } else if allowed {
            Span::styled("in allowlist", t.ok())
        } else {
            Span::styled("NOT in allowlist", t.bad())
        },
    ]));
    if let Some(mv) = &d.my_verdict {
        let m = mv.measurement.clone().unwrap_or_else(|| "-".into());
        let m = if m.len() > 24 {
            format!("{}…{}", &m[..16], &m[m.len() - 8..])
        } else {
            m
        };
        v.push(row("measurement", m));
        let tcb = if mv.tcb.as_object().is_some_and(|o| o.is_empty()) {
            "-".to_string()
        } else {
            mv.tcb.to_string()
        };
        v.push(row("TCB", tcb));
    }
    let coord = st
        .coordinator_verdict
        .as_ref()
        .and_then(|c| c.get("verified").and_then(|b| b.as_bool()))
        .map(|b| if b { "verified" } else { "rejected" })
        .unwrap_or("-");
    v.push(row(
        "coordinator",
        format!("{coord} (not trusted: see mine)"),
    ));
    match &d.my_verdict {
        Some(mv) if mv.verified => {
            let mut l = vec![
                Span::styled(format!("{:<12}", "MY VERDICT"), t.title()),
                Span::styled("VERIFIED", t.ok().add_modifier(Modifier::BOLD)),
                Span::raw(" by me, against the manifest's policy"),
            ];
            if mv.insecure_simulation {
                l.push(Span::raw(" "));
                l.push(Span::styled(" insecure-simulation ", t.danger()));
            }
            v.push(Line::from(l));
            let mine = st.members.iter().find(|m| m.key == app.me.ed25519);
            v.push(row(
                "grant",
                match mine.and_then(|m| m.granted) {
                    Some(true) => "my data key is granted to this node".into(),
                    Some(false) => "enabled: press g".into(),
                    None => "nothing to grant (I bring no dataset)".into(),
                },
            ));
        }
        Some(mv) => {
            let (c, det) = mv
                .failure
                .as_ref()
                .map(|f| (f.check.clone(), f.detail.clone()))
                .unwrap_or(("unknown".into(), String::new()));
            v.push(Line::from(vec![
                Span::styled(format!("{:<12}", "MY VERDICT"), t.title()),
                Span::styled("REJECTED", t.bad()),
                Span::raw(format!(" failed check {c}: {det}")),
            ]));
            v.push(row("grant", "DISABLED: my verification failed".into()));
        }
        None => {}
    }
    v.extend(attempt_lines(app, d));
    v
}

fn report_lines<'a>(app: &App, d: &'a Detail) -> Vec<Line<'a>> {
    let t = app.theme;
    let st = &d.status;
    let mut v = vec![];
    if st.reports.is_empty() {
        v.push(Line::from(
            "No reports yet: the node signs `opened` after checking every input.",
        ));
    }
    for r in &st.reports {
        v.push(Line::from(vec![
            Span::styled(format!("{:<10}", r.kind), t.title()),
            Span::raw(format!(
                "hash {}  block {}  gas {}",
                short_hex(r.report_hash.as_slice()),
                r.block.map(|b| b.to_string()).unwrap_or_else(|| "-".into()),
                r.gas_used
                    .map(|b| b.to_string())
                    .unwrap_or_else(|| "-".into())
            )),
        ]));
        let tx = match &r.tx_hash {
            Some(tx) => Span::styled(tx.clone(), t.ok()),
            None => Span::styled("pending publication", t.pending()),
        };
        v.push(Line::from(vec![Span::styled("  tx      ", t.dim()), tx]));
    }
    if let Some(c) = &d.reports_check {
        let mut l = vec![Span::styled(format!("{:<10}", "verifier"), t.dim())];
        if c.verified {
            l.push(Span::styled(
                "VERIFIED",
                t.ok().add_modifier(Modifier::BOLD),
            ));
        } else {
            l.push(Span::styled("NOT VERIFIED", t.bad()));
        }
        l.push(Span::raw(format!(" outcome {}", c.outcome)));
        if c.insecure_simulation {
            l.push(Span::raw(" "));
            l.push(Span::styled(" insecure-simulation ", t.danger()));
        }
        v.push(Line::from(l));
        if let Some(fc) = &c.failure {
            v.push(Line::from(vec![
                Span::raw("          "),
                Span::styled(format!("failed check {}: {}", fc.check, fc.detail), t.bad()),
            ]));
        }
        v.push(Line::from(Span::styled(
            "          public verifier over the coordinator's copy; e exports the bundle",
            t.dim(),
        )));
    }
    if let Some(r) = &st.abort_reason {
        v.push(kv(t, "aborted", Span::styled(r.clone(), t.bad())));
    }
    v
}

fn bar(done: u64, total: u64, width: usize) -> String {
    let filled = if total == 0 {
        0
    } else {
        ((done.min(total) as u128 * width as u128) / total as u128) as usize
    };
    format!("[{}{}]", "#".repeat(filled), ".".repeat(width - filled))
}

fn draw_status(f: &mut Frame, app: &App, area: Rect) {
    let t = app.theme;
    let Some(d) = app.detail.as_ref().filter(|_| app.screen == Screen::Detail) else {
        return;
    };
    let Some(p) = &d.status.progress else {
        let line = Line::from(vec![
            Span::styled(" progress ", t.dim()),
            Span::raw("not started"),
        ]);
        f.render_widget(Paragraph::new(line), area);
        return;
    };
    let phase = match d.status.state {
        SessionState::Completed | SessionState::Published | SessionState::Delivered => {
            "trained".to_string()
        }
        _ => p
            .get("phase")
            .and_then(|x| x.as_str())
            .unwrap_or("-")
            .to_string(),
    };
    let epoch = p.get("epoch").and_then(|x| x.as_u64());
    let epochs = p
        .get("epochs")
        .and_then(|x| x.as_u64())
        .or(Some(d.status.manifest.training.epochs as u64));
    let mut spans = vec![Span::styled(format!(" {phase} "), t.dim())];
    if let (Some(e), Some(n)) = (epoch, epochs) {
        spans.push(Span::raw(format!("epoch {e}/{n} {} ", bar(e, n, 12))));
    }
    // Metrics only when the manifest makes them public (the coordinator
    // filters too; this keeps a misbehaving one from making them look public).
    if d.status.manifest.training.public_metrics {
        if let Some(m) = p.get("metrics").and_then(|m| m.as_object()) {
            for (key, label) in [
                ("train_loss", "loss"),
                ("loss", "loss"),
                ("accuracy", "acc"),
                ("val_loss", "val loss"),
                ("val_accuracy", "val acc"),
                ("val_r2", "val R²"),
                ("val_rmse", "val RMSE"),
            ] {
                if let Some(x) = m.get(key).and_then(|x| x.as_f64()) {
                    spans.push(Span::raw(format!("{label} {x:.3} ")));
                }
            }
        }
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// The message line's text, wrapped at word boundaries to `width` columns
/// (a word longer than the line, such as a hash, is cut where the line
/// ends); the busy spinner stays one line.
fn message_lines(app: &App, width: u16) -> Vec<Line<'static>> {
    let t = app.theme;
    if let Some(b) = &app.busy {
        let spin = SPINNER[(app.frame % 4) as usize];
        let mut s = format!(" {spin} {}", b.label);
        if b.total > 0 {
            s.push_str(&format!(
                " {} {}/{} bytes",
                bar(b.done, b.total, 20),
                b.done,
                b.total
            ));
        }
        return vec![Line::from(Span::styled(s, t.pending()))];
    }
    let Some((ok, m)) = &app.message else {
        return vec![Line::from("")];
    };
    let style = if *ok { t.ok() } else { t.bad() };
    wrap_words(&format!(" {m}"), usize::from(width.max(2)))
        .into_iter()
        .map(|l| Line::from(Span::styled(l, style)))
        .collect()
}

/// Greedy word wrap by display width; continuation lines are indented by one
/// column like the first.
pub fn wrap_words(text: &str, width: usize) -> Vec<String> {
    let w = |s: &str| Span::raw(s).width();
    let mut lines = vec![];
    let mut cur = String::new();
    let mut started = false;
    for word in text.split(' ') {
        if !started {
            cur.push_str(word);
            started = true;
        } else if cur.trim().is_empty() || w(&cur) + 1 + w(word) <= width {
            cur.push(' ');
            cur.push_str(word);
        } else {
            lines.push(std::mem::take(&mut cur));
            cur.push(' ');
            cur.push_str(word);
        }
        // A word wider than the line (a hash): cut it where the line ends.
        while w(&cur) > width {
            let mut head = String::new();
            for ch in cur.chars() {
                let mut buf = [0u8; 4];
                if w(&head) + w(ch.encode_utf8(&mut buf)) > width {
                    break;
                }
                head.push(ch);
            }
            if head.trim().is_empty() {
                break;
            }
            let rest = format!(" {}", &cur[head.len()..]);
            lines.push(head);
            cur = rest;
        }
    }
    lines.push(cur);
    lines
}

fn draw_message(f: &mut Frame, _app: &App, area: Rect, lines: Vec<Line<'static>>) {
    f.render_widget(Paragraph::new(lines), area);
}

fn draw_footer(f: &mut Frame, app: &App, area: Rect) {
    let t = app.theme;
    let keys: &[(&str, &str)] = match app.screen {
        Screen::List => &[
            ("↑↓", "move"),
            ("Enter", "open"),
            ("r", "refresh"),
            ("?", "help"),
            ("q", "quit"),
        ],
        Screen::Detail => &[
            ("c", "consent"),
            ("w", "withdraw"),
            ("u", "upload"),
            ("g", "grant"),
            ("m", "model"),
            ("e", "export"),
            ("Tab", "pane"),
            ("Esc", "back"),
            ("?", "help"),
        ],
    };
    let mut spans = vec![];
    for (k, what) in keys {
        spans.push(Span::styled(format!(" {k}"), t.key()));
        spans.push(Span::raw(format!(" {what}")));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// A rectangle of at most `w` x `h` centred in `area`.
fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

fn draw_help(f: &mut Frame, app: &App, area: Rect) {
    let t = app.theme;
    let r = centered(area, 76, KEYMAP.len() as u16 + 3);
    let mut lines: Vec<Line> = KEYMAP
        .iter()
        .map(|(k, what)| {
            Line::from(vec![
                Span::styled(format!(" {k:<15}"), t.key()),
                Span::raw(*what),
            ])
        })
        .collect();
    lines.push(Line::from(Span::styled(
        " press ? or Esc to close · q quits",
        t.dim(),
    )));
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title(Span::styled(" Keys ", t.title())),
        ),
        r,
    );
}

fn draw_prompt(f: &mut Frame, app: &App, area: Rect, purpose: PromptFor, input: &str) {
    let t = app.theme;
    let r = centered(area, 76, 6);
    let lines = vec![
        Line::from(vec![
            Span::raw("> "),
            Span::raw(input.to_string()),
            Span::styled("_", t.key()),
        ]),
        Line::from(""),
        Line::from(Span::styled(
            "Enter review · Esc cancel · Ctrl-U clear",
            t.dim(),
        )),
    ];
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::default()
                .borders(Borders::ALL)
                .title(Span::styled(format!(" {} ", purpose.title()), t.title())),
        ),
        r,
    );
}

fn draw_confirm(
    f: &mut Frame,
    app: &App,
    area: Rect,
    action: &crate::app::Action,
    lines: &[String],
) {
    let t = app.theme;
    let r = centered(area, 100, lines.len() as u16 + 6);
    let mut text: Vec<Line> = lines.iter().map(|l| Line::from(l.clone())).collect();
    text.push(Line::from(""));
    text.push(Line::from(vec![
        Span::styled(" y ", t.key()),
        Span::raw(format!("{}   ", action.confirm_key())),
        Span::styled(" n ", t.key()),
        Span::raw("cancel"),
    ]));
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(text).wrap(Wrap { trim: false }).block(
            Block::default()
                .borders(Borders::ALL)
                .title(Span::styled(action.confirm_title(), t.title())),
        ),
        r,
    );
}
