//! The TUI's state and key handling, as plain data: no terminal, no network.
//! Keys turn into [`Effect`]s the caller hands to the worker; worker results
//! come back as [`Msg`]s. Keeping this pure is what lets the rendering tests
//! drive every screen and dialog with `TestBackend`.

use std::path::PathBuf;
use std::time::Instant;

use alloy_primitives::B256;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use sealroom_protocol::api::{SessionState, SessionStatus, SessionSummary};
use sealroom_protocol::identity::PublicIdentity;
use sealroom_protocol::manifest::{ConsentAction, Manifest};
use sealroom_reports::attest::Verdict;
use sealroom_reports::verifier::Verification;

use crate::theme::Theme;
use crate::worker::Msg;

/// A row of the sessions list.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionRow {
    /// What the coordinator lists.
    pub summary: SessionSummary,
    /// My role there (`party NAME`, `owner`, or `-` when not a member; `?` until known).
    pub my_role: String,
}

/// A session as the detail screen shows it, with what I computed myself.
#[derive(Clone, Debug)]
pub struct Detail {
    /// The coordinator's status.
    pub status: SessionStatus,
    /// False when the manifest does not hash to the claimed manifest hash.
    pub manifest_ok: bool,
    /// My own verification of the node's evidence (None: no node yet).
    pub my_verdict: Option<Verdict>,
    /// The public verifier run over a bundle built from the status (None: no reports yet).
    pub reports_check: Option<Verification>,
}

/// Which screen is showing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Screen {
    /// All sessions.
    List,
    /// One session.
    Detail,
}

/// The panes of the detail screen (80x24 cannot hold all at once).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pane {
    /// Manifest summary, my role, next step.
    Overview,
    /// Members' consent, blob and grant flags.
    Members,
    /// Node attestation, with my own verdict.
    Node,
    /// Reports, transactions, verification.
    Reports,
}

impl Pane {
    /// All panes, in tab order.
    pub const ALL: [Pane; 4] = [Pane::Overview, Pane::Members, Pane::Node, Pane::Reports];

    /// Tab title.
    pub fn title(self) -> &'static str {
        match self {
            Pane::Overview => "Overview",
            Pane::Members => "Members",
            Pane::Node => "Node",
            Pane::Reports => "Reports",
        }
    }

    fn index(self) -> usize {
        Pane::ALL.iter().position(|p| *p == self).unwrap_or(0)
    }
}

/// What a path prompt is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PromptFor {
    /// The encrypted blob to upload.
    Blob,
    /// The self-sealed data key to grant.
    DataKey,
    /// Where to write the opened model.
    ModelOut,
    /// Where to write the offline bundle.
    ExportOut,
}

impl PromptFor {
    /// The prompt's title.
    pub fn title(self) -> &'static str {
        match self {
            PromptFor::Blob => "Upload my encrypted blob: path to the .sealed file",
            PromptFor::DataKey => "Grant my data key: path to the .datakey file",
            PromptFor::ModelOut => "Fetch and open the model: write it to",
            PromptFor::ExportOut => "Export the offline bundle: write it to",
        }
    }
}

/// An action the user asked for, with everything the worker needs.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Sign a consent or withdrawal over the manifest hash.
    Consent(ConsentAction),
    /// Upload the blob at this path.
    Upload(PathBuf),
    /// Grant the data key in this file to the registered node.
    Grant(PathBuf),
    /// Fetch the sealed model, open it, write it here.
    FetchModel(PathBuf),
    /// Write the offline bundle here.
    Export(PathBuf),
}

impl Action {
    /// Short name for progress and messages.
    pub fn label(&self) -> &'static str {
        match self {
            Action::Consent(ConsentAction::Consent) => "consent",
            Action::Consent(ConsentAction::Withdraw) => "withdraw",
            Action::Upload(_) => "upload",
            Action::Grant(_) => "grant",
            Action::FetchModel(_) => "fetch model",
            Action::Export(_) => "export",
        }
    }
}

/// A modal on top of the screen.
#[derive(Clone, Debug, PartialEq)]
pub enum Modal {
    /// Nothing.
    None,
    /// The key map.
    Help,
    /// A path prompt.
    Prompt {
        /// What for.
        purpose: PromptFor,
        /// The text typed so far.
        input: String,
    },
    /// "This is exactly what will be signed/sent": y to go, n to cancel.
    Confirm {
        /// The action.
        action: Action,
        /// The lines shown.
        lines: Vec<String>,
    },
}

/// What the caller must ask the worker to do.
#[derive(Clone, Debug)]
pub enum Effect {
    /// Follow this session (or none) live.
    Watch(Option<B256>),
    /// Refresh now.
    Refresh,
    /// Run an action against this session snapshot.
    Run(Action, Box<SessionStatus>),
}

/// Connection to the coordinator as the worker last saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Conn {
    /// Not yet answered.
    Connecting,
    /// Answering; `live` when the event stream is connected too.
    Up {
        /// Event stream connected.
        live: bool,
    },
    /// Unreachable; retrying.
    Down {
        /// Why.
        error: String,
        /// Retry in this many milliseconds.
        retry_ms: u64,
    },
}

/// An action in flight.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Busy {
    /// What is happening.
    pub label: String,
    /// Bytes or steps done.
    pub done: u64,
    /// Of this many (0: unknown).
    pub total: u64,
}

/// The whole state of the TUI.
pub struct App {
    /// My public identity.
    pub me: PublicIdentity,
    /// The coordinator's base URL.
    pub coordinator: String,
    /// Colours.
    pub theme: Theme,
    /// Current screen.
    pub screen: Screen,
    /// Current detail pane.
    pub pane: Pane,
    /// Selected row of the list.
    pub selected: usize,
    /// The sessions list.
    pub sessions: Vec<SessionRow>,
    /// The session shown in detail.
    pub watched: Option<B256>,
    /// Its latest status.
    pub detail: Option<Detail>,
    /// Connection state.
    pub conn: Conn,
    /// The open modal.
    pub modal: Modal,
    /// The action in flight.
    pub busy: Option<Busy>,
    /// The last outcome: (ok, text).
    pub message: Option<(bool, String)>,
    /// The last blob path used, to suggest its `.datakey`.
    pub last_blob: Option<PathBuf>,
    /// Set when the user quits.
    pub quit: bool,
    /// Animation frame counter (spinner).
    pub frame: u64,
    started: Instant,
}

/// My role in a manifest: `owner`, `party NAME`, or `None`.
pub fn role_in(manifest: &Manifest, me: &[u8; 32]) -> Option<String> {
    if manifest.owner.identity.ed25519 == *me {
        return Some("owner".into());
    }
    manifest
        .parties
        .iter()
        .find(|p| p.identity.ed25519 == *me)
        .map(|p| format!("party {}", p.name))
}

pub use sealroom_member::my_input;

impl App {
    /// A fresh app on the sessions list.
    pub fn new(me: PublicIdentity, coordinator: &str, theme: Theme) -> Self {
        Self {
            me,
            coordinator: coordinator.to_string(),
            theme,
            screen: Screen::List,
            pane: Pane::Overview,
            selected: 0,
            sessions: Vec::new(),
            watched: None,
            detail: None,
            conn: Conn::Connecting,
            modal: Modal::None,
            busy: None,
            message: None,
            last_blob: None,
            quit: false,
            frame: 0,
            started: Instant::now(),
        }
    }

    /// Advances the spinner (called once per UI loop).
    pub fn tick(&mut self) {
        self.frame = (self.started.elapsed().as_millis() / 120) as u64;
    }

    /// Applies a worker message.
    pub fn apply(&mut self, msg: Msg) {
        match msg {
            Msg::Sessions(rows) => {
                self.sessions = rows;
                if self.selected >= self.sessions.len() {
                    self.selected = self.sessions.len().saturating_sub(1);
                }
            }
            Msg::Detail(d) => {
                if Some(d.status.session_id) == self.watched {
                    self.detail = Some(*d);
                }
            }
            Msg::Conn(c) => self.conn = c,
            Msg::Progress(b) => self.busy = Some(b),
            Msg::Done(r) => {
                self.busy = None;
                self.message = Some(match r {
                    Ok(t) => (true, t),
                    Err(e) => (false, e),
                });
            }
        }
    }

    fn me_key(&self) -> [u8; 32] {
        self.me.ed25519
    }

    /// Handles one key press.
    pub fn handle_key(&mut self, k: KeyEvent) -> Vec<Effect> {
        if k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL) {
            self.quit = true;
            return vec![];
        }
        match self.modal.clone() {
            Modal::Help => {
                if matches!(
                    k.code,
                    KeyCode::Esc | KeyCode::Char('?') | KeyCode::Char('q') | KeyCode::Enter
                ) {
                    self.modal = Modal::None;
                }
                return vec![];
            }
            Modal::Prompt { purpose, mut input } => {
                match k.code {
                    KeyCode::Esc => self.modal = Modal::None,
                    KeyCode::Enter => {
                        let path = PathBuf::from(input.trim());
                        if input.trim().is_empty() {
                            self.message = Some((false, "no path given".into()));
                            self.modal = Modal::None;
                        } else {
                            let action = match purpose {
                                PromptFor::Blob => Action::Upload(path),
                                PromptFor::DataKey => Action::Grant(path),
                                PromptFor::ModelOut => Action::FetchModel(path),
                                PromptFor::ExportOut => Action::Export(path),
                            };
                            self.confirm(action);
                        }
                    }
                    KeyCode::Backspace => {
                        input.pop();
                        self.modal = Modal::Prompt { purpose, input };
                    }
                    KeyCode::Char('u') if k.modifiers.contains(KeyModifiers::CONTROL) => {
                        self.modal = Modal::Prompt {
                            purpose,
                            input: String::new(),
                        };
                    }
                    KeyCode::Char(ch) => {
                        input.push(ch);
                        self.modal = Modal::Prompt { purpose, input };
                    }
                    _ => {}
                }
                return vec![];
            }
            Modal::Confirm { action, .. } => {
                match k.code {
                    KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter => {
                        self.modal = Modal::None;
                        if let Some(d) = &self.detail {
                            if let Action::Upload(p) = &action {
                                self.last_blob = Some(p.clone());
                            }
                            self.busy = Some(Busy {
                                label: format!("{}…", action.label()),
                                done: 0,
                                total: 0,
                            });
                            self.message = None;
                            return vec![Effect::Run(action, Box::new(d.status.clone()))];
                        }
                    }
                    KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => {
                        self.modal = Modal::None;
                        self.message = Some((
                            false,
                            format!("{} cancelled; nothing was signed or sent", action.label()),
                        ));
                    }
                    _ => {}
                }
                return vec![];
            }
            Modal::None => {}
        }
        match k.code {
            KeyCode::Char('?') => {
                self.modal = Modal::Help;
                vec![]
            }
            KeyCode::Char('q') => {
                self.quit = true;
                vec![]
            }
            KeyCode::Char('r') => vec![Effect::Refresh],
            _ => match self.screen {
                Screen::List => self.list_key(k),
                Screen::Detail => self.detail_key(k),
            },
        }
    }

    fn list_key(&mut self, k: KeyEvent) -> Vec<Effect> {
        match k.code {
            KeyCode::Up | KeyCode::Char('k') => {
                self.selected = self.selected.saturating_sub(1);
                vec![]
            }
            KeyCode::Down | KeyCode::Char('j') => {
                if self.selected + 1 < self.sessions.len() {
                    self.selected += 1;
                }
                vec![]
            }
            KeyCode::Enter | KeyCode::Right | KeyCode::Char('l') => {
                match self.sessions.get(self.selected) {
                    Some(row) => {
                        let id = row.summary.session_id;
                        self.watched = Some(id);
                        self.detail = None;
                        self.message = None;
                        self.screen = Screen::Detail;
                        self.pane = Pane::Overview;
                        vec![Effect::Watch(Some(id))]
                    }
                    None => vec![],
                }
            }
            _ => vec![],
        }
    }

    fn detail_key(&mut self, k: KeyEvent) -> Vec<Effect> {
        match k.code {
            KeyCode::Esc | KeyCode::Left | KeyCode::Char('h') | KeyCode::Backspace => {
                self.screen = Screen::List;
                self.watched = None;
                self.detail = None;
                self.message = None;
                vec![Effect::Watch(None)]
            }
            KeyCode::Tab | KeyCode::Right => {
                self.pane = Pane::ALL[(self.pane.index() + 1) % Pane::ALL.len()];
                vec![]
            }
            KeyCode::BackTab => {
                self.pane = Pane::ALL[(self.pane.index() + Pane::ALL.len() - 1) % Pane::ALL.len()];
                vec![]
            }
            KeyCode::Char(c @ '1'..='4') => {
                self.pane = Pane::ALL[(c as usize) - ('1' as usize)];
                vec![]
            }
            KeyCode::Char('c') => self.action_consent(ConsentAction::Consent),
            KeyCode::Char('w') | KeyCode::Char('a') => self.action_consent(ConsentAction::Withdraw),
            KeyCode::Char('u') => self.action_prompt(PromptFor::Blob),
            KeyCode::Char('g') => self.action_prompt(PromptFor::DataKey),
            KeyCode::Char('m') => self.action_prompt(PromptFor::ModelOut),
            KeyCode::Char('e') => self.action_prompt(PromptFor::ExportOut),
            _ => vec![],
        }
    }

    fn refuse(&mut self, why: impl Into<String>) -> Vec<Effect> {
        self.message = Some((false, why.into()));
        vec![]
    }

    /// Why an action is not available now, or None when it is.
    pub fn unavailable(&self, what: PromptFor) -> Option<String> {
        let d = self.detail.as_ref()?;
        let m = &d.status.manifest;
        let me = self.me_key();
        let member = role_in(m, &me).is_some();
        match what {
            PromptFor::Blob => {
                if !member {
                    Some("upload: this identity is not a member of the session".into())
                } else if my_input(m, &me).is_none() {
                    Some("upload: this member brings no dataset".into())
                } else {
                    None
                }
            }
            PromptFor::DataKey => {
                if my_input(m, &me).is_none() {
                    return Some("grant: this member brings no dataset".into());
                }
                match &d.my_verdict {
                    None => Some("grant disabled: no node has registered yet".into()),
                    Some(v) if !v.verified => {
                        let f = v.failure.as_ref();
                        Some(format!(
                            "grant disabled: my verification of the node failed: {}: {}",
                            f.map(|f| f.check.as_str()).unwrap_or("unknown"),
                            f.map(|f| f.detail.as_str()).unwrap_or("")
                        ))
                    }
                    Some(_) => None,
                }
            }
            PromptFor::ModelOut => {
                if m.owner.identity.ed25519 != me {
                    Some("fetch model: only the model owner can open the model".into())
                } else if !matches!(
                    d.status.state,
                    SessionState::Published | SessionState::Delivered
                ) {
                    Some(format!(
                        "fetch model: released once both reports are on chain (state is {})",
                        d.status.state.as_str()
                    ))
                } else {
                    None
                }
            }
            PromptFor::ExportOut => None,
        }
    }

    fn action_consent(&mut self, action: ConsentAction) -> Vec<Effect> {
        if self.busy.is_some() {
            return self.refuse("an action is already running");
        }
        let Some(d) = &self.detail else {
            return self.refuse("waiting for the session status");
        };
        if role_in(&d.status.manifest, &self.me_key()).is_none() {
            return self.refuse("consent: this identity is not a member of the session");
        }
        if !d.manifest_ok && action == ConsentAction::Consent {
            return self.refuse(
                "consent refused: the manifest does not hash to the served hash, or is not the one you consented to",
            );
        }
        if action == ConsentAction::Withdraw
            && (d.status.state >= SessionState::Completed
                || d.status.state == SessionState::Aborted)
        {
            return self.refuse(format!(
                "abort: the session is already {}",
                d.status.state.as_str()
            ));
        }
        self.confirm(Action::Consent(action));
        vec![]
    }

    fn action_prompt(&mut self, purpose: PromptFor) -> Vec<Effect> {
        if self.detail.is_none() {
            return self.refuse("waiting for the session status");
        }
        if self.busy.is_some() {
            return self.refuse("an action is already running");
        }
        if let Some(why) = self.unavailable(purpose) {
            return self.refuse(why);
        }
        let input = match purpose {
            PromptFor::DataKey => self
                .last_blob
                .as_ref()
                .map(|b| {
                    let mut s = b.as_os_str().to_owned();
                    s.push(".datakey");
                    PathBuf::from(s).display().to_string()
                })
                .unwrap_or_default(),
            PromptFor::ExportOut => self
                .detail
                .as_ref()
                .map(|d| format!("{}-bundle.json", d.status.manifest.name))
                .unwrap_or_default(),
            PromptFor::ModelOut => self
                .detail
                .as_ref()
                .map(|d| format!("{}.model", d.status.manifest.name))
                .unwrap_or_default(),
            PromptFor::Blob => String::new(),
        };
        self.modal = Modal::Prompt { purpose, input };
        vec![]
    }

    /// Opens the confirmation for `action`, listing exactly what will be signed or sent.
    fn confirm(&mut self, action: Action) {
        let Some(d) = &self.detail else {
            self.modal = Modal::None;
            return;
        };
        let st = &d.status;
        let m = &st.manifest;
        let me = self.me_key();
        let input = my_input(m, &me).unwrap_or_else(|| "-".into());
        let node = st.node.as_ref();
        let mut lines = vec![
            format!("session   {}", m.name),
            format!("manifest  {:#x}", st.manifest_hash),
        ];
        match &action {
            Action::Consent(a) => {
                lines.push(format!(
                    "action    {} (signed: \"sealroom.consent.v1\" || {} || manifest)",
                    match a {
                        ConsentAction::Consent => "CONSENT",
                        ConsentAction::Withdraw => "WITHDRAW consent",
                    },
                    match a {
                        ConsentAction::Consent => 1,
                        ConsentAction::Withdraw => 2,
                    }
                ));
                lines.push(format!("member    {}", role_in(m, &me).unwrap_or_default()));
                if *a == ConsentAction::Withdraw {
                    lines.push(
                        "a withdrawal aborts the session now: a node that is training stops, wipes and signs `aborted`"
                            .into(),
                    );
                }
            }
            Action::Upload(p) => {
                lines.push("action    UPLOAD my encrypted blob (request signed by my key)".into());
                lines.push(format!("input     {input}"));
                lines.push(format!("file      {}", p.display()));
                if let Some((_, _, c)) = m
                    .grantable_inputs()
                    .into_iter()
                    .find(|(n, _, _)| *n == input)
                {
                    lines.push(format!("sha256    {:#x}", c.ciphertext_sha256));
                    lines.push(format!(
                        "length    {} bytes (checked before sending)",
                        c.ciphertext_len
                    ));
                }
            }
            Action::Grant(p) => {
                lines.push("action    GRANT my data key, sealed to the node's HPKE key".into());
                lines.push(format!("input     {input}"));
                lines.push(format!("key file  {}", p.display()));
                if let Some(n) = node {
                    lines.push(format!("node key  {}", hex::encode(n.node_key)));
                    lines.push(format!("node hpke {}", hex::encode(n.hpke_key)));
                    lines.push(format!(
                        "evidence  {}{} (verified again by me before sealing)",
                        n.kind,
                        if n.kind == sealroom_protocol::policy::TeeKind::Sim {
                            ", INSECURE-SIMULATION"
                        } else {
                            ""
                        }
                    ));
                }
            }
            Action::FetchModel(p) => {
                lines.push("action    FETCH the sealed model and open it with my key".into());
                lines.push(format!("write to  {} (mode 0600)", p.display()));
            }
            Action::Export(p) => {
                lines.push("action    EXPORT the offline bundle (nothing is signed)".into());
                lines.push(format!("write to  {}", p.display()));
            }
        }
        self.modal = Modal::Confirm { action, lines };
    }
}
