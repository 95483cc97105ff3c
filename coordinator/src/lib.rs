//! The sealroom coordinator (DESIGN §1, §2): a session service trusted for
//! liveness only. It stores and relays manifests, consents, ciphertext
//! blobs, grants (sealed to the node) and signed reports; it verifies
//! signatures and the node's evidence so that a broken request fails early,
//! but it holds no key that decrypts anything and every party and the node
//! re-check what it relays.
//!
//! Layout: [`server`] (HTTP routes) → [`service`] (state machine) →
//! [`db`] (SQLite) and [`blobs`] (content-addressed store); [`chain`]
//! publishes reports; [`auth`] checks signed requests.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
pub mod blobs;
pub mod chain;
pub mod db;
pub mod error;
pub mod events;
pub mod server;
pub mod service;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::Address;
pub use chain::{ChainCtx, ChainSpec};
pub use error::{ApiErr, CoordinatorError};
use sealroom_contracts::ChainKey;

/// Everything `sealroom coordinator serve` configures.
#[derive(Debug)]
pub struct Config {
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    pub listen: String,
    /// Data directory: `coordinator.sqlite`, `blobs/`, and `chain/` for the embedded chain.
    pub data: PathBuf,
    /// The chain reports go to.
    pub chain: ChainSpec,
    /// The sender key for RPC chains.
    pub chain_key: Option<ChainKey>,
    /// Confirmations per transaction (default: the preset's, 1 elsewhere).
    pub confirmations: Option<u64>,
    /// A registry already deployed (otherwise deployed on first use and remembered).
    pub contract: Option<Address>,
    /// Lease time in seconds (`--lease-s`, default [`service::DEFAULT_LEASE_S`]).
    pub lease_s: u64,
}

/// A bound, ready coordinator.
pub struct Server {
    listener: tokio::net::TcpListener,
    core: Arc<Core>,
}

use service::Core;

impl Server {
    /// Opens the data directory, database, blob store and chain, and binds
    /// the listener. Pending publications resume once [`Server::serve`] runs.
    pub async fn bind(config: Config) -> Result<Self, CoordinatorError> {
        let io = |path: &std::path::Path| {
            let path = path.display().to_string();
            move |source| CoordinatorError::Io { path, source }
        };
        std::fs::create_dir_all(&config.data).map_err(io(&config.data))?;
        let conn = db::open(&config.data.join("coordinator.sqlite"))?;
        let blob_dir = config.data.join("blobs");
        let blobs = blobs::DirBlobStore::open(&blob_dir).map_err(io(&blob_dir))?;
        let chain = ChainCtx::open(
            &config.chain,
            config.chain_key,
            config.confirmations,
            config.contract,
        )
        .await?;
        let remembered =
            db::meta(&conn, &chain.meta_key()).map_err(|e| CoordinatorError::Database {
                path: config.data.join("coordinator.sqlite").display().to_string(),
                detail: e.to_string(),
            })?;
        chain.adopt_remembered(remembered.as_deref());
        tracing::info!(chain = %chain.label(), contract = ?chain.contract(), "chain ready");
        let listener = tokio::net::TcpListener::bind(&config.listen)
            .await
            .map_err(|source| CoordinatorError::Listen {
                addr: config.listen.clone(),
                source,
            })?;
        // Nodes could not heartbeat while this process was down: every
        // active lease starts afresh rather than expiring at once.
        let now = service::now_s();
        db::refresh_active_leases(&conn, now).map_err(|e| CoordinatorError::Database {
            path: config.data.join("coordinator.sqlite").display().to_string(),
            detail: e.to_string(),
        })?;
        Ok(Self {
            listener,
            core: Arc::new(Core::new(conn, Arc::new(blobs), chain).with_lease(config.lease_s)),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> Result<SocketAddr, CoordinatorError> {
        self.listener
            .local_addr()
            .map_err(|source| CoordinatorError::Listen {
                addr: "bound socket".into(),
                source,
            })
    }

    /// Serves until `shutdown` resolves, then stops accepting, ends event
    /// streams and lets in-flight requests finish.
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), CoordinatorError> {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let core = self.core.clone();
        // Resume: publish what was accepted but not yet on chain, then keep
        // retrying pending publications and forgetting expired nonces.
        let lease_core = self.core.clone();
        let leases = tokio::spawn(async move {
            // Checked a few times per lease, at least once every 5 s.
            let every = Duration::from_secs((lease_core.lease_s / 4).clamp(1, 5));
            loop {
                tokio::time::sleep(every).await;
                let lease_s = lease_core.lease_s;
                match lease_core
                    .db(move |c| service::expire_leases(c, service::now_s(), lease_s))
                    .await
                {
                    Ok(ev) => lease_core.emit(ev),
                    Err(e) => tracing::warn!(error = %e.message, "lease check failed"),
                }
            }
        });
        let background = tokio::spawn(async move {
            let mut tick = 0u64;
            loop {
                service::publish_all_pending(&core).await;
                if tick == 0 {
                    let before =
                        service::now_s().saturating_sub(2 * sealroom_protocol::api::MAX_SKEW_S);
                    if let Err(e) = core.db(move |c| Ok(db::prune_nonces(c, before)?)).await {
                        tracing::warn!(error = %e.message, "nonce pruning failed");
                    }
                }
                tick = (tick + 1) % 12;
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        });
        let app = server::router(self.core.clone(), rx);
        let addr = self.local_addr()?;
        let result = axum::serve(self.listener, app)
            .with_graceful_shutdown(async move {
                shutdown.await;
                tracing::info!("shutting down");
                let _ = tx.send(true);
            })
            .await
            .map_err(|source| CoordinatorError::Listen {
                addr: addr.to_string(),
                source,
            });
        background.abort();
        leases.abort();
        result
    }
}

/// Installs a stderr logger (`RUST_LOG` overrides the default `info`).
/// Logs name sessions, routes, states and checks; never request bodies.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sealroom_coordinator=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
async fn termination() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs the coordinator on its own multi-threaded runtime until SIGTERM or
/// SIGINT; `on_listening` gets the bound address once requests are accepted
/// (the CLI prints `listening on http://ADDR`).
pub fn run(config: Config, on_listening: impl FnOnce(SocketAddr)) -> Result<(), CoordinatorError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CoordinatorError::Config(format!("cannot start the async runtime: {e}")))?;
    rt.block_on(async move {
        let server = Server::bind(config).await?;
        let addr = server.local_addr()?;
        on_listening(addr);
        server.serve(termination()).await
    })
}

/// A coordinator running on its own thread and runtime (tests, and callers
/// such as `sealroom run` that want it in-process). Stops on
/// [`Background::stop`] or drop.
pub struct Background {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), CoordinatorError>>>,
}

impl Background {
    /// Starts a coordinator; returns once it accepts requests.
    pub fn start(config: Config) -> Result<Self, CoordinatorError> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || -> Result<(), CoordinatorError> {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| {
                    CoordinatorError::Config(format!("cannot start the async runtime: {e}"))
                })?;
            rt.block_on(async move {
                let server = match Server::bind(config).await {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return Err(e);
                    }
                };
                let _ = ready_tx.send(server.local_addr().map_err(|e| e.to_string()));
                server
                    .serve(async move {
                        let _ = stop_rx.await;
                    })
                    .await
            })
        });
        let addr = ready_rx
            .recv()
            .map_err(|_| {
                CoordinatorError::Config("the coordinator thread ended before binding".into())
            })?
            .map_err(CoordinatorError::Config)?;
        Ok(Self {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops it gracefully and waits for the thread.
    pub fn stop(mut self) -> Result<(), CoordinatorError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), CoordinatorError> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(CoordinatorError::Config(
                "the coordinator thread panicked".into(),
            )),
            None => Ok(()),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}
