//! `sealroom tui`: the terminal client consortium partners (a hospital's data
//! steward, the model owner) use to follow and act on sessions.
//!
//! The UI thread only draws and handles keys: everything that touches the
//! network or does cryptography runs on worker threads ([`worker`],
//! [`actions`]) and reports back over a channel, so a slow coordinator or a
//! large blob never freezes the screen. State and key handling live in
//! [`app`] as plain data, so rendering ([`ui`]) and behaviour are testable
//! with ratatui's `TestBackend` and no terminal.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod actions;
pub mod app;
pub mod theme;
pub mod ui;
pub mod worker;

#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use ratatui::crossterm::event::{self, Event, KeyEventKind};
use sealroom_protocol::identity::Identity;

/// Why the TUI could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TuiError {
    /// The identity file could not be loaded.
    #[error("--key {path}: {detail}")]
    Key {
        /// The file.
        path: String,
        /// The cause.
        detail: String,
    },
    /// The coordinator URL is unusable.
    #[error("--coordinator {0}: expected an http:// or https:// URL")]
    Url(String),
    /// The terminal could not be set up or drawn.
    #[error("terminal: {0}")]
    Terminal(#[from] std::io::Error),
}

/// Runs the TUI until the user quits. `coordinator` is the base URL, `key`
/// the member's identity file (loaded once; the secret never leaves memory).
pub fn run(coordinator: &str, key: &Path, state: Option<&Path>) -> Result<(), TuiError> {
    if !(coordinator.starts_with("http://") || coordinator.starts_with("https://")) {
        return Err(TuiError::Url(coordinator.to_string()));
    }
    let identity = Identity::load(key).map_err(|e| TuiError::Key {
        path: key.display().to_string(),
        detail: e.to_string(),
    })?;
    let identity = Arc::new(identity);
    let (msg_tx, msg_rx) = mpsc::channel();
    // The same records `sealroom party|owner` keep beside the key (or under
    // `--state`), so the TUI and the CLI check one consented manifest.
    let records = match state {
        Some(d) => sealroom_member::RecordStore::in_dir(d),
        None => sealroom_member::RecordStore::beside_identity(key),
    };
    let worker = worker::Worker::start(
        coordinator,
        Arc::clone(&identity),
        key.to_path_buf(),
        records,
        msg_tx,
    );
    let mut app = app::App::new(identity.public(), coordinator, theme::Theme::from_env());

    let mut terminal = ratatui::try_init()?;
    let result = event_loop(&mut terminal, &mut app, &worker, &msg_rx);
    ratatui::restore();
    result
}

fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    app: &mut app::App,
    worker: &worker::Worker,
    msg_rx: &mpsc::Receiver<worker::Msg>,
) -> Result<(), TuiError> {
    while !app.quit {
        terminal.draw(|f| ui::draw(f, app))?;
        // Short poll so worker messages show up promptly even without keys.
        if event::poll(Duration::from_millis(100))? {
            match event::read()? {
                Event::Key(k) if k.kind == KeyEventKind::Press => {
                    for effect in app.handle_key(k) {
                        worker.apply(effect);
                    }
                }
                // ratatui resizes its buffers on the next draw.
                _ => {}
            }
        }
        while let Ok(m) = msg_rx.try_recv() {
            app.apply(m);
        }
        app.tick();
    }
    Ok(())
}
