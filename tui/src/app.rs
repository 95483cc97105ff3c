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
    /// Its manifest's header, computed once per status (the party tree is
    /// O(n); the panes redraw many times per status).
    pub header: sealroom_protocol::manifest::ManifestHeader,
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
    /// The confirmation's title: what pressing `y` does.
    pub fn confirm_title(&self) -> &'static str {
        match self {
            Action::Consent(_) | Action::Upload(_) | Action::Grant(_) => {
                " Confirm: exactly what will be signed and sent "
            }
            Action::FetchModel(_) => {
                " Confirm: fetch the sealed model (signed request), open it here "
            }
            Action::Export(_) => " Export: write a file (nothing is signed or sent) ",
        }
    }

    /// What `y` does, in the confirmation's key line.
    pub fn confirm_key(&self) -> &'static str {
        match self {
            Action::Consent(_) | Action::Upload(_) | Action::Grant(_) => "sign and send",
            Action::FetchModel(_) => "fetch, open and write",
            Action::Export(_) => "write the file",
        }
    }

    /// What a cancel leaves undone.
    fn cancelled(&self) -> &'static str {
        match self {
            Action::Export(_) => "nothing was written",
            Action::FetchModel(_) => "nothing was fetched or written",
            _ => "nothing was signed or sent",
        }
    }

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
    /// Read this file's length and SHA-256 (for the upload confirmation).
    CheckFile(PathBuf),
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

/// The chosen blob's own length and SHA-256, read off the UI thread and
/// shown beside the manifest's in the upload confirmation: the manifest's
/// values say what the file must be, not what it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileCheck {
    /// Being read (bytes done of total).
    Reading {
        /// Bytes hashed so far.
        done: u64,
        /// The file's size (0: not known yet).
        total: u64,
    },
    /// Read in full.
    Read {
        /// Length in bytes.
        len: u64,
        /// SHA-256 of the bytes.
        sha256: B256,
    },
    /// Could not be read.
    Failed(String),
}

/// Which of a file's values differ from the manifest's, in words
/// (`length (…)`, `sha256 (…)`, or both), or None when both match.
pub fn blob_mismatch(expected: (u64, B256), found: (u64, B256)) -> Option<String> {
    let mut differs = vec![];
    if found.0 != expected.0 {
        differs.push(format!(
            "length ({} bytes; the manifest says {} bytes)",
            found.0, expected.0
        ));
    }
    if found.1 != expected.1 {
        differs.push(format!(
            "sha256 ({:#x}; the manifest says {:#x})",
            found.1, expected.1
        ));
    }
    (!differs.is_empty()).then(|| differs.join(" and "))
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
    /// The blob chosen for upload and what reading it found.
    pub file_check: Option<(PathBuf, FileCheck)>,
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

/// The input I own in the whole manifest the TUI displays (my party name,
/// or the owner's validation input).
pub fn my_input(manifest: &Manifest, me: &[u8; 32]) -> Option<String> {
    manifest.input_of(me).map(|(name, _)| name)
}

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
            file_check: None,
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
            Msg::FileCheck { path, check } => {
                if self.file_check.as_ref().is_some_and(|(p, _)| *p == path) {
                    self.file_check = Some((path.clone(), check));
                    // The open confirmation shows the new values.
                    if let Modal::Confirm {
                        action: action @ Action::Upload(p),
                        ..
                    } = &self.modal
                    {
                        if *p == path {
                            self.confirm(action.clone());
                        }
                    }
                }
            }
        }
    }

    /// The manifest's length and SHA-256 for my input's blob.
    fn expected_blob(&self) -> Option<(u64, B256)> {
        let d = self.detail.as_ref()?;
        let input = my_input(&d.status.manifest, &self.me_key())?;
        d.status
            .manifest
            .grantable_inputs()
            .into_iter()
            .find(|(n, _, _)| *n == input)
            .map(|(_, _, c)| (c.ciphertext_len, c.ciphertext_sha256))
    }

    /// Whether `y` may send the blob at `path`: Ok(true) go, Ok(false)
    /// still reading, Err(why) refused (nothing is sent).
    fn upload_gate(&self, path: &PathBuf) -> Result<bool, String> {
        let check = self
            .file_check
            .as_ref()
            .filter(|(p, _)| p == path)
            .map(|(_, c)| c);
        match check {
            None | Some(FileCheck::Reading { .. }) => Ok(false),
            Some(FileCheck::Failed(e)) => Err(format!(
                "upload refused: {}: {e}; nothing was sent",
                path.display()
            )),
            Some(FileCheck::Read { len, sha256 }) => {
                let expected = self
                    .expected_blob()
                    .ok_or("upload refused: the manifest has no input for me; nothing was sent")?;
                match blob_mismatch(expected, (*len, *sha256)) {
                    None => Ok(true),
                    Some(why) => Err(format!(
                        "upload refused before sending: {} differs from the manifest's commitment in {why}; nothing was sent",
                        path.display()
                    )),
                }
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
                match k.code {
                    // `q` quits everywhere but in a text prompt.
                    KeyCode::Char('q') => self.quit = true,
                    KeyCode::Esc | KeyCode::Char('?') | KeyCode::Enter => self.modal = Modal::None,
                    _ => {}
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
                                PromptFor::Blob => Action::Upload(path.clone()),
                                PromptFor::DataKey => Action::Grant(path.clone()),
                                PromptFor::ModelOut => Action::FetchModel(path.clone()),
                                PromptFor::ExportOut => Action::Export(path.clone()),
                            };
                            if purpose == PromptFor::Blob {
                                // Read the file itself (off the UI thread) to
                                // show its own values beside the manifest's.
                                self.file_check =
                                    Some((path.clone(), FileCheck::Reading { done: 0, total: 0 }));
                                self.confirm(action);
                                return vec![Effect::CheckFile(path)];
                            }
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
                        if let Action::Upload(p) = &action {
                            match self.upload_gate(p) {
                                Ok(true) => {}
                                Ok(false) => {
                                    self.message = Some((
                                        false,
                                        "still reading the file to compare it with the manifest; press y again once it is read".into(),
                                    ));
                                    return vec![];
                                }
                                Err(why) => {
                                    self.modal = Modal::None;
                                    self.message = Some((false, why));
                                    return vec![];
                                }
                            }
                        }
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
                            format!("{} cancelled; {}", action.label(), action.cancelled()),
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
                lines.extend(upload_lines(
                    self.expected_blob(),
                    self.file_check
                        .as_ref()
                        .filter(|(f, _)| f == p)
                        .map(|(_, c)| c),
                ));
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
                lines.push(
                    "action    EXPORT the offline bundle JSON (sealroom-bundle/2) to a file".into(),
                );
                lines.push(format!("write to  {}", p.display()));
                lines.push(
                    "contents  built from the coordinator's status: the reports, each node attempt's evidence, the manifest (before any report exists: the status JSON instead)"
                        .into(),
                );
                lines.push(
                    "signed    nothing: this reads the status and writes the file; nothing is sent"
                        .into(),
                );
                lines.push(format!("verify    sealroom report verify {}", p.display()));
            }
        }
        self.modal = Modal::Confirm { action, lines };
    }
}

/// The upload confirmation's comparison: the manifest's length and SHA-256
/// for my input, the file's own (or how far reading it is), and the verdict.
/// Each hash has a line of its own, so both fit 80 columns whole.
fn upload_lines(expected: Option<(u64, B256)>, found: Option<&FileCheck>) -> Vec<String> {
    let mut v = vec![];
    let Some((len, sha)) = expected else {
        v.push("manifest  (no input of mine in the manifest)".into());
        return v;
    };
    v.push(format!("manifest  {len} bytes, sha256"));
    v.push(format!("          {sha:#x}"));
    match found {
        None | Some(FileCheck::Reading { .. }) => {
            let progress = match found {
                Some(FileCheck::Reading { done, total }) if *total > 0 => {
                    format!(" {done}/{total} bytes")
                }
                _ => String::new(),
            };
            v.push(format!("this file reading…{progress}"));
            v.push(
                "check     comparing the file with the manifest (y waits until it is read)".into(),
            );
        }
        Some(FileCheck::Failed(e)) => {
            v.push(format!("this file cannot be read: {e}"));
            v.push("check     REFUSED: nothing will be sent".into());
        }
        Some(FileCheck::Read {
            len: flen,
            sha256: fsha,
        }) => {
            v.push(format!("this file {flen} bytes, sha256"));
            v.push(format!("          {fsha:#x}"));
            v.push(match (*flen != len, *fsha != sha) {
                (false, false) => {
                    "check     the file's length and sha256 MATCH the manifest's commitment".into()
                }
                (l, h) => format!(
                    "check     DIFFERS from the manifest: {}; y refuses, nothing will be sent",
                    match (l, h) {
                        (true, true) => "length and sha256 differ",
                        (true, false) => "length differs",
                        _ => "sha256 differs",
                    }
                ),
            });
        }
    }
    v
}
