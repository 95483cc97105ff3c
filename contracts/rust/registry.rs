//! The registry on a [`Chain`]: deploy, open sessions, publish reports
//! idempotently, and read a session's reports back from calldata.
//!
//! Everything goes through [`Chain::send`] / [`Chain::call`] /
//! [`Chain::logs`], so the embedded chain and a JSON-RPC node behave alike.

use std::time::Duration;

use alloy_primitives::{keccak256, Address, Bytes, B256};
use alloy_sol_types::{SolCall, SolEvent};
use serde::Serialize;

use crate::bindings::{registry_error, SessionRegistry as R};
use crate::chain::{Chain, ChainError, LogQuery, TxOutcome};
use sealroom_reports::report::{IntegrityReport, ReportKind};

/// Registry failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The chain failed (transport, revert, node, state).
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The report's kind is not 1, 2 or 3.
    #[error("report kind {0} is not opened (1), completed (2) or aborted (3)")]
    InvalidKind(u8),
    /// A different report already holds this (session, kind): write-once
    /// for `completed` and `aborted`; for `opened`, the report does not
    /// link the latest `opened` on chain (a replacement attempt's `opened`
    /// must name it in `prevReportHash`).
    #[error("session {session_id} already has a different {kind} report on chain (stored {stored}, this one {ours})")]
    Conflict {
        /// Session id.
        session_id: B256,
        /// Kind.
        kind: &'static str,
        /// Hash already stored.
        stored: B256,
        /// Hash of the report being published.
        ours: B256,
    },
    /// The session id is registered with another manifest or publisher.
    #[error("session {session_id} is already registered with manifest {manifest_hash} and publisher {publisher}")]
    SessionConflict {
        /// Session id.
        session_id: B256,
        /// Registered manifest hash.
        manifest_hash: B256,
        /// Registered publisher.
        publisher: Address,
    },
    /// The session was never opened on this registry.
    #[error("session {0} is not registered on this registry")]
    UnknownSession(B256),
    /// The deployment produced no contract address.
    #[error("deployment transaction {0} created no contract")]
    NoContract(B256),
    /// Data from the chain did not decode.
    #[error("cannot decode {what}: {detail}")]
    Decode {
        /// What was being decoded.
        what: String,
        /// The decoder's message.
        detail: String,
    },
    /// `keccak256(report)` from the calldata differs from the stored or the
    /// emitted hash: the chain's answer is inconsistent (or the node lies).
    #[error("report hash mismatch for {kind} report of tx {tx_hash}: calldata {calldata}, event {event}, stored {stored}")]
    HashMismatch {
        /// Kind.
        kind: &'static str,
        /// The publishing transaction.
        tx_hash: B256,
        /// keccak256 of the report bytes in the calldata.
        calldata: B256,
        /// The hash the event carries.
        event: B256,
        /// The hash in the registry's storage.
        stored: B256,
    },
    /// The publishing transaction did not call the registry directly (e.g.
    /// went through a multisig), so its calldata is not `publishReport`.
    #[error("transaction {0} is not a direct publishReport call to the registry")]
    NotDirectCall(B256),
    /// The chain returned an event whose transaction it cannot find.
    #[error("transaction {0} is unknown to the node")]
    MissingTransaction(B256),
    /// Storage holds a hash but no event was found in the scanned range.
    #[error("session {session_id} has a stored {kind} report but no ReportPublished event from block {from_block}")]
    MissingEvent {
        /// Session id.
        session_id: B256,
        /// Kind.
        kind: &'static str,
        /// First block scanned.
        from_block: u64,
    },
    /// The events found disagree with the registry's storage: more `opened`
    /// events than the session's `openedCount`, or a report kind twice.
    #[error("session {session_id}: {detail}")]
    UnexpectedEvents {
        /// Session id.
        session_id: B256,
        /// What was found.
        detail: String,
    },
    /// A `ReportPublished` event's `prevReportHash` does not name the
    /// report before it in chain order (the registry enforces the links, so
    /// the chain's answer is inconsistent).
    #[error("the {kind} report of tx {tx_hash} links {prev}, expected {expected}")]
    BrokenLink {
        /// Kind.
        kind: &'static str,
        /// The publishing transaction.
        tx_hash: B256,
        /// The `prevReportHash` the event carries.
        prev: B256,
        /// The hash of the latest `opened` before it (zero when none).
        expected: B256,
    },
}

/// A registered session as the registry stores it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SessionInfo {
    /// The only account allowed to publish the session's reports.
    pub publisher: Address,
    /// The manifest hash the session was registered with (from storage
    /// before `opened`, from the `SessionOpened` event after).
    pub manifest_hash: B256,
    /// Block of `openSession`.
    pub opened_block: u64,
    /// Whether an `opened` report was published.
    pub opened: bool,
    /// Whether an `aborted` report was published.
    pub aborted: bool,
    /// How many `opened` reports were published: one per node attempt
    /// that reached `opened` (more than one after a fail-over).
    pub opened_count: u16,
}

/// Result of [`Registry::open_session`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OpenedSession {
    /// The `openSession` transaction (the original one when already open).
    pub tx_hash: B256,
    /// Its block.
    pub block_number: u64,
    /// Its gas.
    pub gas_used: u64,
    /// True when the session was already registered identically (no new transaction).
    pub already_open: bool,
}

/// Result of [`Registry::publish`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Published {
    /// `opened`, `completed` or `aborted`.
    pub kind: ReportKind,
    /// Session id.
    pub session_id: B256,
    /// keccak256(abi.encode(report)).
    pub report_hash: B256,
    /// The publishing transaction (the original one on a retry).
    pub tx_hash: B256,
    /// Its block.
    pub block_number: u64,
    /// Gas it used.
    pub gas_used: u64,
    /// True when the identical report was already on chain: nothing was sent.
    pub already_published: bool,
}

/// A published batch of reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BatchPublished {
    /// Its root.
    pub root: B256,
    /// The publishing transaction (the original one when already published).
    pub tx_hash: B256,
    /// Its block.
    pub block_number: u64,
    /// Gas it used.
    pub gas_used: u64,
    /// True when the root was already on chain: nothing was sent.
    pub already_published: bool,
}

/// One report read back from the chain, checked against storage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedReport {
    /// Kind.
    pub kind: ReportKind,
    /// The decoded report.
    pub report: IntegrityReport,
    /// The report bytes exactly as in calldata (abi.encode(report)).
    pub report_bytes: Bytes,
    /// The node's signature, as in calldata.
    pub signature: Bytes,
    /// The TEE evidence envelope, as in calldata: set on each node
    /// attempt's first report, empty on the node's later reports.
    pub evidence: Bytes,
    /// keccak256(report_bytes), equal to the emitted hash and to the stored
    /// one (for a superseded `opened`: to the `prevReportHash` of the next
    /// attempt's `opened`, which the registry checked against its storage).
    pub report_hash: B256,
    /// The `prevReportHash` the event carries.
    pub prev_report_hash: B256,
    /// The publishing transaction.
    pub tx_hash: B256,
    /// Its block.
    pub block_number: u64,
    /// Its sender.
    pub sender: Address,
}

/// A session read back from the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    /// Session id.
    pub session_id: B256,
    /// Registration.
    pub info: SessionInfo,
    /// Every report in chain order: the `opened` report of each node
    /// attempt (one unless a node was replaced), then the terminal
    /// `completed` or `aborted`, if any. Each report links the latest
    /// `opened` before it (zero for the first).
    pub reports: Vec<PublishedReport>,
}

impl SessionRecord {
    /// The first report of one kind, if published (for `opened`: the first
    /// attempt's; see [`SessionRecord::latest`]).
    pub fn report(&self, kind: ReportKind) -> Option<&PublishedReport> {
        self.reports.iter().find(|r| r.kind == kind)
    }

    /// The latest report of one kind (for `opened`: the current attempt's,
    /// the one the registry stores).
    pub fn latest(&self, kind: ReportKind) -> Option<&PublishedReport> {
        self.reports.iter().rev().find(|r| r.kind == kind)
    }

    /// The `opened` reports, one per node attempt that reached `opened`, in order.
    pub fn opened_reports(&self) -> impl Iterator<Item = &PublishedReport> {
        self.reports.iter().filter(|r| r.kind == ReportKind::Opened)
    }
}

/// How the reader scans for events.
#[derive(Clone, Debug)]
pub struct ReadOptions {
    /// Blocks per `eth_getLogs` request (public endpoints cap the range);
    /// 0 means one request.
    pub max_block_range: u64,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self {
            max_block_range: 10_000,
        }
    }
}

const KINDS: [ReportKind; 3] = [
    ReportKind::Opened,
    ReportKind::Completed,
    ReportKind::Aborted,
];

/// The registry at an address on a chain.
#[derive(Debug)]
pub struct Registry<C> {
    chain: C,
    address: Address,
    confirmations: u64,
    attempts: u32,
    backoff: Duration,
}

impl<C: Chain> Registry<C> {
    /// The registry already deployed at `address`. Defaults: 1
    /// confirmation, 4 attempts, 500 ms first backoff.
    pub fn at(chain: C, address: Address) -> Self {
        Self {
            chain,
            address,
            confirmations: 1,
            attempts: 4,
            backoff: Duration::from_millis(500),
        }
    }

    /// Deploys the committed bytecode and returns the registry with the
    /// deployment's outcome.
    pub async fn deploy(chain: C, confirmations: u64) -> Result<(Self, TxOutcome), RegistryError> {
        let outcome = chain.deploy(R::BYTECODE.clone(), confirmations).await?;
        let address = outcome
            .contract_address
            .ok_or(RegistryError::NoContract(outcome.tx_hash))?;
        Ok((
            Self::at(chain, address).with_confirmations(confirmations),
            outcome,
        ))
    }

    /// Confirmations each transaction waits for.
    pub fn with_confirmations(mut self, confirmations: u64) -> Self {
        self.confirmations = confirmations.max(1);
        self
    }

    /// Bounded retries on transport errors: `attempts` tries in all, the
    /// first retry after `backoff`, doubling.
    pub fn with_retries(mut self, attempts: u32, backoff: Duration) -> Self {
        self.attempts = attempts.max(1);
        self.backoff = backoff;
        self
    }

    /// The registry's address.
    pub fn address(&self) -> Address {
        self.address
    }

    /// The chain.
    pub fn chain(&self) -> &C {
        &self.chain
    }

    /// Gas a mined transaction used (0 when its receipt is gone).
    async fn gas_of(&self, tx_hash: B256) -> Result<u64, RegistryError> {
        Ok(self
            .chain
            .receipt(tx_hash)
            .await?
            .map(|r| r.gas_used)
            .unwrap_or(0))
    }

    async fn view<T: SolCall>(&self, call: T) -> Result<T::Return, RegistryError> {
        let out = self
            .chain
            .call(self.address, call.abi_encode().into())
            .await?;
        T::abi_decode_returns(&out).map_err(|e| RegistryError::Decode {
            what: format!("{} return", T::SIGNATURE),
            detail: e.to_string(),
        })
    }

    /// Retries `op` on transient chain errors with exponential backoff.
    async fn with_backoff<T, F, Fut>(&self, op: F) -> Result<T, RegistryError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, RegistryError>>,
    {
        let mut delay = self.backoff;
        let mut attempt = 1;
        loop {
            match op().await {
                Err(RegistryError::Chain(e)) if is_retryable(&e) && attempt < self.attempts => {
                    tokio::time::sleep(delay).await;
                    delay = delay.saturating_mul(2);
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// The registration of `session_id`, `None` when unknown.
    pub async fn session(&self, session_id: B256) -> Result<Option<SessionInfo>, RegistryError> {
        let r = self
            .view(R::sessionOfCall {
                sessionId: session_id,
            })
            .await?;
        if r.publisher == Address::ZERO {
            return Ok(None);
        }
        let mut manifest_hash = r.manifestHash;
        if r.opened {
            // The opened report took over the manifest's storage slot; the
            // SessionOpened event of the open block still carries it.
            let query = LogQuery {
                address: self.address,
                topic0: R::SessionOpened::SIGNATURE_HASH,
                topic1: Some(session_id),
                from_block: r.openedBlock,
                to_block: Some(r.openedBlock),
            };
            let logs = self.chain.logs(&query).await?;
            let log = logs.first().ok_or(RegistryError::MissingEvent {
                session_id,
                kind: "SessionOpened",
                from_block: r.openedBlock,
            })?;
            let event = R::SessionOpened::decode_raw_log(log.topics.iter().copied(), &log.data)
                .map_err(|e| RegistryError::Decode {
                    what: "SessionOpened event".to_string(),
                    detail: e.to_string(),
                })?;
            manifest_hash = event.manifestHash;
        }
        Ok(Some(SessionInfo {
            publisher: r.publisher,
            manifest_hash,
            opened_block: r.openedBlock,
            opened: r.opened,
            aborted: r.aborted,
            opened_count: r.openedCount,
        }))
    }

    /// The stored hash of a session's report of one kind, `None` when none.
    pub async fn report_hash(
        &self,
        session_id: B256,
        kind: ReportKind,
    ) -> Result<Option<B256>, RegistryError> {
        let h = self
            .view(R::reportHashOfCall {
                sessionId: session_id,
                kind: kind as u8,
            })
            .await?;
        Ok((h != B256::ZERO).then_some(h))
    }

    /// keccak256(abi.encode(report)) as the EVM computes it.
    pub async fn hash_report_onchain(
        &self,
        report: &IntegrityReport,
    ) -> Result<B256, RegistryError> {
        // Same ABI on both sides: re-encode the shared struct into the
        // binding's parameter type.
        let arg =
            <R::IntegrityReport as alloy_sol_types::SolValue>::abi_decode(&report.abi_bytes())
                .map_err(|e| RegistryError::Decode {
                    what: "IntegrityReport".to_string(),
                    detail: e.to_string(),
                })?;
        self.view(R::hashReportCall { report: arg }).await
    }

    /// Verifies an OpenZeppelin standard-tree inclusion proof in the EVM.
    pub async fn verify_inclusion(
        &self,
        root: B256,
        leaf: B256,
        proof: &[B256],
    ) -> Result<bool, RegistryError> {
        self.view(R::verifyInclusionCall {
            root,
            leaf,
            proof: proof.to_vec(),
        })
        .await
    }

    /// Publishes `batch` under its root (`publishBatch`). Idempotent: when
    /// the root is already on chain nothing is sent and the original
    /// transaction is returned (`already_published`), found by its
    /// `BatchPublished` event. Transport failures are retried, each retry
    /// re-reading the root first.
    pub async fn publish_batch(
        &self,
        batch: &crate::batch::ReportBatch,
    ) -> Result<BatchPublished, RegistryError> {
        let root = batch.root();
        let call = R::publishBatchCall {
            root,
            reportCount: alloy_primitives::U256::from(batch.entries().len()),
            reports: batch.encode(),
        };
        let data: Bytes = call.abi_encode().into();
        self.with_backoff(|| async {
            if let Some(block) = self.batch_block(root).await? {
                let logs = self
                    .chain
                    .logs(&LogQuery {
                        address: self.address,
                        topic0: R::BatchPublished::SIGNATURE_HASH,
                        topic1: Some(root),
                        from_block: block,
                        to_block: Some(block),
                    })
                    .await?;
                let log = logs.first().ok_or(RegistryError::Decode {
                    what: "BatchPublished".to_string(),
                    detail: format!("no event for root {root} in block {block}"),
                })?;
                let gas_used = self.gas_of(log.tx_hash).await?;
                return Ok(BatchPublished {
                    root,
                    tx_hash: log.tx_hash,
                    block_number: block,
                    gas_used,
                    already_published: true,
                });
            }
            let out = self
                .chain
                .send(self.address, data.clone(), self.confirmations)
                .await?;
            Ok(BatchPublished {
                root,
                tx_hash: out.tx_hash,
                block_number: out.block_number,
                gas_used: out.gas_used,
                already_published: false,
            })
        })
        .await
    }

    /// The block a batch root was published in, if it was.
    pub async fn batch_block(&self, root: B256) -> Result<Option<u64>, RegistryError> {
        let b: alloy_primitives::U256 = self.view(R::batchBlockCall { root }).await?;
        Ok((!b.is_zero()).then(|| u64::try_from(b).unwrap_or(u64::MAX)))
    }

    /// Registers a session. Idempotent: an identical registration returns
    /// the original transaction; a different one is [`RegistryError::SessionConflict`].
    pub async fn open_session(
        &self,
        session_id: B256,
        manifest_hash: B256,
        publisher: Address,
    ) -> Result<OpenedSession, RegistryError> {
        self.with_backoff(|| async {
            if let Some(info) = self.session(session_id).await? {
                if info.manifest_hash == manifest_hash && info.publisher == publisher {
                    return self.find_opened(session_id, &info).await;
                }
                return Err(RegistryError::SessionConflict {
                    session_id,
                    manifest_hash: info.manifest_hash,
                    publisher: info.publisher,
                });
            }
            let call = R::openSessionCall {
                sessionId: session_id,
                manifestHash: manifest_hash,
                publisher,
            };
            let out = self
                .chain
                .send(self.address, call.abi_encode().into(), self.confirmations)
                .await?;
            Ok(OpenedSession {
                tx_hash: out.tx_hash,
                block_number: out.block_number,
                gas_used: out.gas_used,
                already_open: false,
            })
        })
        .await
    }

    async fn find_opened(
        &self,
        session_id: B256,
        info: &SessionInfo,
    ) -> Result<OpenedSession, RegistryError> {
        let logs = self
            .scan(
                R::SessionOpened::SIGNATURE_HASH,
                session_id,
                info.opened_block,
                &ReadOptions::default(),
                |l| !l.is_empty(),
            )
            .await?;
        let log = logs.first().ok_or(RegistryError::MissingEvent {
            session_id,
            kind: "SessionOpened",
            from_block: info.opened_block,
        })?;
        let gas_used = self.gas_of(log.tx_hash).await?;
        Ok(OpenedSession {
            tx_hash: log.tx_hash,
            block_number: log.block_number,
            gas_used,
            already_open: true,
        })
    }

    /// Publishes a signed report (its kind and session come from the
    /// report). Idempotent per report: when this very report is already on
    /// chain nothing is sent and the original transaction is returned
    /// (`already_published`). A different report for a taken `completed` or
    /// `aborted` is [`RegistryError::Conflict`]. `opened` comes once per
    /// node attempt: with an `opened` already stored, a different `opened`
    /// is sent when its `prevReportHash` names the stored one (a
    /// replacement attempt), and is a [`RegistryError::Conflict`] otherwise
    /// (unless it is an earlier attempt's `opened`, superseded since: then
    /// it was published, and its transaction is returned).
    ///
    /// Transport failures are retried (bounded, exponential backoff); each
    /// retry first re-reads the chain, so a send that did land is never
    /// repeated. Reverts come back decoded (e.g. `NotPublisher: ...`,
    /// `SessionClosed: ...` for an `opened` after the session ended).
    pub async fn publish(
        &self,
        report: &IntegrityReport,
        signature: &[u8],
        evidence: &[u8],
    ) -> Result<Published, RegistryError> {
        let kind =
            ReportKind::from_code(report.kind).ok_or(RegistryError::InvalidKind(report.kind))?;
        let session_id = report.sessionId;
        let prev = report.prevReportHash;
        let report_bytes = Bytes::from(report.abi_bytes());
        let report_hash = keccak256(&report_bytes);
        let calldata: Bytes = R::publishReportCall {
            sessionId: session_id,
            kind: kind as u8,
            report: report_bytes.clone(),
            signature: Bytes::copy_from_slice(signature),
            evidence: Bytes::copy_from_slice(evidence),
        }
        .abi_encode()
        .into();
        let ours = Ours {
            session_id,
            kind,
            hash: report_hash,
            prev,
        };
        self.with_backoff(|| async {
            let stored = self.report_hash(session_id, kind).await?;
            if let Some(done) = self.settle(&ours, stored).await {
                return done;
            }
            match self
                .chain
                .send(self.address, calldata.clone(), self.confirmations)
                .await
            {
                Ok(out) => Ok(Published {
                    kind,
                    session_id,
                    report_hash,
                    tx_hash: out.tx_hash,
                    block_number: out.block_number,
                    gas_used: out.gas_used,
                    already_published: false,
                }),
                // Lost a race with another publisher process (or with our
                // own earlier send): same answer as the pre-check.
                Err(ChainError::Reverted { data, reason }) => {
                    let settled = match registry_error(&data) {
                        Some(R::SessionRegistryErrors::ReportExists(e)) => {
                            self.settle(&ours, Some(e.reportHash)).await
                        }
                        // Another attempt's opened landed between our read
                        // and our send: the chain decides.
                        Some(R::SessionRegistryErrors::FieldMismatch(e))
                            if kind == ReportKind::Opened && e.field == 5 =>
                        {
                            let stored = self.report_hash(session_id, kind).await?;
                            self.settle(&ours, stored).await
                        }
                        _ => None,
                    };
                    match settled {
                        Some(done) => done,
                        None => Err(ChainError::Reverted { data, reason }.into()),
                    }
                }
                // Mined but failed: typically a resend after an unconfirmed
                // first attempt, which then landed first. The chain decides.
                Err(failed @ ChainError::FailedOnChain { .. }) => {
                    let stored = self.report_hash(session_id, kind).await?;
                    match self.settle(&ours, stored).await {
                        Some(done) => done,
                        None => Err(failed.into()),
                    }
                }
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    /// What the stored hash of our report's kind means for it: `None` when
    /// it is still to be sent; otherwise the answer (already published, or
    /// a conflict).
    async fn settle(
        &self,
        ours: &Ours,
        stored: Option<B256>,
    ) -> Option<Result<Published, RegistryError>> {
        let stored = stored?;
        if stored == ours.hash {
            return Some(self.already(ours).await);
        }
        if ours.kind == ReportKind::Opened {
            if ours.prev == stored {
                // A replacement attempt's opened, linking the latest one.
                return None;
            }
            // An earlier attempt's opened, superseded since?
            match self.find_report(ours).await {
                Ok(Some(p)) => return Some(Ok(p)),
                Ok(None) => {}
                Err(e) => return Some(Err(e)),
            }
        }
        Some(Err(RegistryError::Conflict {
            session_id: ours.session_id,
            kind: ours.kind.as_str(),
            stored,
            ours: ours.hash,
        }))
    }

    /// The original transaction of a report the chain holds.
    async fn already(&self, ours: &Ours) -> Result<Published, RegistryError> {
        if let Some(p) = self.find_report(ours).await? {
            return Ok(p);
        }
        let from_block = self
            .session(ours.session_id)
            .await?
            .map(|i| i.opened_block)
            .unwrap_or_default();
        Err(RegistryError::MissingEvent {
            session_id: ours.session_id,
            kind: ours.kind.as_str(),
            from_block,
        })
    }

    /// Finds the `ReportPublished` event of exactly this report.
    async fn find_report(&self, ours: &Ours) -> Result<Option<Published>, RegistryError> {
        let info = self
            .session(ours.session_id)
            .await?
            .ok_or(RegistryError::UnknownSession(ours.session_id))?;
        let is_ours = |l: &crate::ChainLog| {
            l.topics.get(2) == Some(&kind_topic(ours.kind))
                && R::ReportPublished::decode_raw_log(l.topics.iter().copied(), &l.data)
                    .is_ok_and(|e| e.reportHash == ours.hash)
        };
        let logs = self
            .scan(
                R::ReportPublished::SIGNATURE_HASH,
                ours.session_id,
                info.opened_block,
                &ReadOptions::default(),
                |l| l.iter().any(is_ours),
            )
            .await?;
        let Some(log) = logs.iter().find(|l| is_ours(l)) else {
            return Ok(None);
        };
        let gas_used = self.gas_of(log.tx_hash).await?;
        Ok(Some(Published {
            kind: ours.kind,
            session_id: ours.session_id,
            report_hash: ours.hash,
            tx_hash: log.tx_hash,
            block_number: log.block_number,
            gas_used,
            already_published: true,
        }))
    }

    /// Scans the registry's `topic0` events for `session_id` from
    /// `from_block` to the latest block, in windows of
    /// `options.max_block_range`, stopping once `done` holds.
    async fn scan(
        &self,
        topic0: B256,
        session_id: B256,
        from_block: u64,
        options: &ReadOptions,
        done: impl Fn(&[crate::ChainLog]) -> bool,
    ) -> Result<Vec<crate::ChainLog>, RegistryError> {
        let latest = self.chain.block_number().await?;
        let mut found = Vec::new();
        let mut start = from_block;
        loop {
            let end = if options.max_block_range == 0 {
                latest
            } else {
                start
                    .saturating_add(options.max_block_range - 1)
                    .min(latest)
            };
            let query = LogQuery {
                address: self.address,
                topic0,
                topic1: Some(session_id),
                from_block: start,
                to_block: Some(end),
            };
            found.extend(self.chain.logs(&query).await?);
            if done(&found) || end >= latest {
                return Ok(found);
            }
            start = end + 1;
        }
    }

    /// Reads a session's reports back, in chain order: every `opened`
    /// (one per node attempt, as many as the registry's `openedCount`),
    /// then the terminal report. Finds the `ReportPublished` events,
    /// fetches each transaction's calldata, decodes report, signature and
    /// evidence, and checks keccak256(report) equals the emitted hash and
    /// the stored one (for a superseded `opened`: the next `opened`'s
    /// `prevReportHash`, which the registry checked against its storage),
    /// and that every event links the latest `opened` before it.
    pub async fn read_session(
        &self,
        session_id: B256,
        options: &ReadOptions,
    ) -> Result<SessionRecord, RegistryError> {
        let info = self
            .session(session_id)
            .await?
            .ok_or(RegistryError::UnknownSession(session_id))?;
        let mut stored = Vec::new();
        for kind in KINDS {
            if let Some(h) = self.report_hash(session_id, kind).await? {
                stored.push((kind, h));
            }
        }
        let opened_count = usize::from(info.opened_count);
        let count = |l: &[crate::ChainLog], k: ReportKind| {
            l.iter()
                .filter(|l| l.topics.get(2) == Some(&kind_topic(k)))
                .count()
        };
        let mut logs = if stored.is_empty() {
            Vec::new()
        } else {
            self.scan(
                R::ReportPublished::SIGNATURE_HASH,
                session_id,
                info.opened_block,
                options,
                |l| {
                    count(l, ReportKind::Opened) >= opened_count
                        && stored
                            .iter()
                            .filter(|(k, _)| *k != ReportKind::Opened)
                            .all(|(k, _)| count(l, *k) >= 1)
                },
            )
            .await?
        };
        // Chain order (the windows come in order; a stable sort keeps the
        // order of logs within a block).
        logs.sort_by_key(|l| l.block_number);
        let stored_of = |k: ReportKind| stored.iter().find(|(x, _)| *x == k).map(|(_, h)| *h);
        for kind in KINDS {
            let expected = match kind {
                ReportKind::Opened => opened_count,
                _ => usize::from(stored_of(kind).is_some()),
            };
            let found = count(&logs, kind);
            if found < expected {
                return Err(RegistryError::MissingEvent {
                    session_id,
                    kind: kind.as_str(),
                    from_block: info.opened_block,
                });
            }
            if found > expected {
                return Err(RegistryError::UnexpectedEvents {
                    session_id,
                    detail: format!(
                        "{found} {} event(s) found, the registry's storage accounts for {expected}",
                        kind.as_str()
                    ),
                });
            }
        }
        let mut reports: Vec<PublishedReport> = Vec::new();
        let mut latest_opened = B256::ZERO;
        let mut openeds_seen = 0;
        let mut closed = false;
        for log in &logs {
            let Some(kind) = log
                .topics
                .get(2)
                .and_then(|t| KINDS.into_iter().find(|k| kind_topic(*k) == *t))
            else {
                continue;
            };
            let event = R::ReportPublished::decode_raw_log(log.topics.iter().copied(), &log.data)
                .map_err(|e| RegistryError::Decode {
                what: "ReportPublished event".to_string(),
                detail: e.to_string(),
            })?;
            if closed {
                return Err(RegistryError::UnexpectedEvents {
                    session_id,
                    detail: format!(
                        "a {} event (tx {}) follows the terminal report",
                        kind.as_str(),
                        log.tx_hash
                    ),
                });
            }
            if event.prevReportHash != latest_opened {
                return Err(RegistryError::BrokenLink {
                    kind: kind.as_str(),
                    tx_hash: log.tx_hash,
                    prev: event.prevReportHash,
                    expected: latest_opened,
                });
            }
            // What the registry vouches for: the stored hash, or for a
            // superseded opened the next opened's (checked) link.
            let vouched = if kind == ReportKind::Opened {
                openeds_seen += 1;
                if openeds_seen == opened_count {
                    stored_of(kind).unwrap_or_default()
                } else {
                    logs.iter()
                        .filter(|l| l.topics.get(2) == Some(&kind_topic(ReportKind::Opened)))
                        .nth(openeds_seen)
                        .and_then(|l| {
                            R::ReportPublished::decode_raw_log(l.topics.iter().copied(), &l.data)
                                .ok()
                        })
                        .map(|e| e.prevReportHash)
                        .unwrap_or_default()
                }
            } else {
                closed = true;
                stored_of(kind).unwrap_or_default()
            };
            let tx = self
                .chain
                .transaction(log.tx_hash)
                .await?
                .ok_or(RegistryError::MissingTransaction(log.tx_hash))?;
            if tx.to != Some(self.address) {
                return Err(RegistryError::NotDirectCall(log.tx_hash));
            }
            let call = R::publishReportCall::abi_decode(&tx.input)
                .map_err(|_| RegistryError::NotDirectCall(log.tx_hash))?;
            let calldata_hash = keccak256(&call.report);
            if calldata_hash != vouched
                || event.reportHash != vouched
                || call.sessionId != session_id
                || call.kind != kind as u8
            {
                return Err(RegistryError::HashMismatch {
                    kind: kind.as_str(),
                    tx_hash: log.tx_hash,
                    calldata: calldata_hash,
                    event: event.reportHash,
                    stored: vouched,
                });
            }
            let report = IntegrityReport::from_abi_bytes(&call.report).map_err(|e| {
                RegistryError::Decode {
                    what: format!("{} report of tx {}", kind.as_str(), log.tx_hash),
                    detail: e.to_string(),
                }
            })?;
            if kind == ReportKind::Opened {
                latest_opened = vouched;
            }
            reports.push(PublishedReport {
                kind,
                report,
                report_bytes: call.report,
                signature: call.signature,
                evidence: call.evidence,
                report_hash: vouched,
                prev_report_hash: event.prevReportHash,
                tx_hash: log.tx_hash,
                block_number: log.block_number,
                sender: tx.from,
            });
        }
        Ok(SessionRecord {
            session_id,
            info,
            reports,
        })
    }
}

/// The report being published, as [`Registry::publish`] compares it with
/// what the chain holds.
struct Ours {
    session_id: B256,
    kind: ReportKind,
    hash: B256,
    prev: B256,
}

/// The reader as a free function: `(chain, contract, session id)`.
pub async fn read_session<C: Chain>(
    chain: C,
    contract: Address,
    session_id: B256,
    options: &ReadOptions,
) -> Result<SessionRecord, RegistryError> {
    Registry::at(chain, contract)
        .read_session(session_id, options)
        .await
}

/// The indexed `kind` topic of `ReportPublished`.
fn kind_topic(kind: ReportKind) -> B256 {
    B256::left_padding_from(&[kind as u8])
}

/// Transport failures and unconfirmed sends are worth another round: the
/// next round re-reads the chain before sending anything.
fn is_retryable(e: &ChainError) -> bool {
    e.is_transient() || matches!(e, ChainError::Unconfirmed { .. })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AnyChain, EmbeddedChain, RpcChain};
    use std::sync::Arc;

    fn assert_send<T: Send>(_: &T) {}

    /// A tokio server (the coordinator) spawns publishes on its worker
    /// threads: every registry future must be `Send`, on every chain type.
    #[allow(dead_code)]
    fn futures_are_send(
        e: &EmbeddedChain,
        r: RpcChain,
        a: Arc<AnyChain>,
        report: &IntegrityReport,
    ) {
        let reg = Registry::at(e, Address::ZERO);
        assert_send(&reg.publish(report, &[], &[]));
        assert_send(&reg.read_session(B256::ZERO, &ReadOptions::default()));
        let reg = Registry::at(r, Address::ZERO);
        assert_send(&reg.publish(report, &[], &[]));
        assert_send(&reg.open_session(B256::ZERO, B256::ZERO, Address::ZERO));
        let reg = Registry::at(a, Address::ZERO);
        assert_send(&reg.publish(report, &[], &[]));
        assert_send(&reg.read_session(B256::ZERO, &ReadOptions::default()));
    }

    /// Wraps the embedded chain; the first `send` lands but its answer is
    /// "lost" (a transport error), as when a connection drops mid-request.
    struct Flaky {
        inner: EmbeddedChain,
        sends: std::sync::atomic::AtomicU32,
    }

    impl Chain for Flaky {
        fn kind(&self) -> crate::ChainKind {
            self.inner.kind()
        }
        fn chain_id(&self) -> u64 {
            self.inner.chain_id()
        }
        fn label(&self) -> String {
            self.inner.label()
        }
        fn sender(&self) -> Address {
            self.inner.sender()
        }
        async fn deploy(&self, code: Bytes, c: u64) -> Result<TxOutcome, ChainError> {
            self.inner.deploy(code, c).await
        }
        async fn send(&self, to: Address, input: Bytes, c: u64) -> Result<TxOutcome, ChainError> {
            let out = self.inner.send(to, input, c).await?;
            if self.sends.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 1 {
                return Err(ChainError::Transport {
                    endpoint: "test".into(),
                    detail: "connection reset".into(),
                });
            }
            Ok(out)
        }
        async fn call(&self, to: Address, input: Bytes) -> Result<Bytes, ChainError> {
            self.inner.call(to, input).await
        }
        async fn block_number(&self) -> Result<u64, ChainError> {
            self.inner.block_number().await
        }
        async fn logs(&self, q: &LogQuery) -> Result<Vec<crate::ChainLog>, ChainError> {
            self.inner.logs(q).await
        }
        async fn transaction(&self, h: B256) -> Result<Option<crate::TxRecord>, ChainError> {
            self.inner.transaction(h).await
        }
        async fn receipt(&self, h: B256) -> Result<Option<TxOutcome>, ChainError> {
            self.inner.receipt(h).await
        }
    }

    #[test]
    fn a_lost_answer_is_retried_without_a_second_record() {
        use crate::gas::{filler, realistic_report};
        let dir = tempfile::tempdir().unwrap();
        let chain = Flaky {
            inner: EmbeddedChain::open(dir.path()).unwrap(),
            sends: Default::default(),
        };
        crate::block_on(async {
            let (reg, _) = Registry::deploy(&chain, 1).await.unwrap();
            let reg = reg.with_retries(3, Duration::from_millis(1));
            let (s, m) = (keccak256(b"s"), keccak256(b"m"));
            // Send #0 opens the session; send #1 (the publish) lands but errs.
            reg.open_session(s, m, chain.sender()).await.unwrap();
            let r = realistic_report(s, m, ReportKind::Opened, B256::ZERO, b"ev");
            let before = chain.block_number().await.unwrap();
            let p = reg.publish(&r, &filler("sig", 64), b"ev").await.unwrap();
            assert!(p.already_published, "the retry found the landed tx");
            assert_eq!(
                chain.block_number().await.unwrap(),
                before + 1,
                "one record, not two"
            );
            let rec = reg.read_session(s, &ReadOptions::default()).await.unwrap();
            assert_eq!(rec.reports[0].tx_hash, p.tx_hash);
        })
        .unwrap();
    }

    fn reverted_with(err: &RegistryError, name: &str) -> bool {
        matches!(err, RegistryError::Chain(ChainError::Reverted { reason, .. }) if reason.starts_with(name))
    }

    /// Fail-over on the registry: each node attempt's `opened` links the
    /// latest one; idempotency is per report; the terminal report links
    /// the latest `opened`; nothing follows it. Prints the gas of a
    /// replacement's `opened` (docs/chain.md quotes it).
    #[test]
    fn a_replacement_attempt_opens_again_linked_to_the_latest_opened() {
        use crate::gas::{filler, realistic_report};
        use ReportKind::{Aborted, Completed, Opened};
        let dir = tempfile::tempdir().unwrap();
        let chain = EmbeddedChain::open(dir.path()).unwrap();
        crate::block_on(async {
            let (reg, _) = Registry::deploy(&chain, 1).await.unwrap();
            let (s, m) = (keccak256(b"failover session"), keccak256(b"manifest"));
            reg.open_session(s, m, chain.sender()).await.unwrap();
            let sig = filler("sig", 64);
            let (ev1, ev2) = (
                filler("node 1 evidence", 5000),
                filler("node 2 evidence", 5000),
            );
            let raw = |r: &IntegrityReport, ev: &[u8]| {
                let data: Bytes = R::publishReportCall {
                    sessionId: r.sessionId,
                    kind: r.kind,
                    report: r.abi_bytes().into(),
                    signature: sig.clone().into(),
                    evidence: ev.to_vec().into(),
                }
                .abi_encode()
                .into();
                let chain = &chain;
                let to = reg.address();
                async move { chain.send(to, data, 1).await.map_err(RegistryError::from) }
            };
            let node = |mut r: IntegrityReport, n: &str| {
                r.nodeKey = keccak256(n.as_bytes());
                r.nodeHpkeKey = keccak256(format!("{n} hpke").as_bytes());
                r
            };

            let o1 = node(realistic_report(s, m, Opened, B256::ZERO, &ev1), "node 1");
            let p1 = reg.publish(&o1, &sig, &ev1).await.unwrap();
            // A replacement's opened linking the first attempt's: a new record.
            let mut o2 = node(
                realistic_report(s, m, Opened, o1.report_hash(), &ev2),
                "node 2",
            );
            o2.timestamp += 600;
            let p2 = reg.publish(&o2, &sig, &ev2).await.unwrap();
            assert!(!p2.already_published && p2.tx_hash != p1.tx_hash);
            println!(
                "replacement opened with 5 KB evidence: {} gas (first opened: {} gas)",
                p2.gas_used, p1.gas_used
            );
            let info = reg.session(s).await.unwrap().unwrap();
            assert_eq!(
                (info.opened, info.opened_count, info.manifest_hash),
                (true, 2, m)
            );
            assert_eq!(
                reg.report_hash(s, Opened).await.unwrap(),
                Some(o2.report_hash())
            );

            // Idempotent per report: the latest opened again, and the
            // superseded one, each resolve to their own transaction.
            let again = reg.publish(&o2, &sig, &ev2).await.unwrap();
            assert!(again.already_published);
            assert_eq!((again.tx_hash, again.gas_used), (p2.tx_hash, p2.gas_used));
            let old = reg.publish(&o1, &sig, &ev1).await.unwrap();
            assert!(old.already_published);
            assert_eq!(old.tx_hash, p1.tx_hash);
            // The contract itself: a retry is ReportExists ...
            let err = raw(&o2, &ev2).await.unwrap_err();
            assert!(reverted_with(&err, "ReportExists"), "{err}");
            // ... an opened that does not link the latest is FieldMismatch 5,
            // and the client calls it a conflict without sending.
            for stale_prev in [B256::ZERO, o1.report_hash()] {
                let o3 = node(realistic_report(s, m, Opened, stale_prev, &ev1), "node 3");
                let err = raw(&o3, &ev1).await.unwrap_err();
                assert!(
                    reverted_with(&err, "FieldMismatch: report prevReportHash"),
                    "{err}"
                );
                let err = reg.publish(&o3, &sig, &ev1).await.unwrap_err();
                assert!(matches!(err, RegistryError::Conflict { .. }), "{err}");
            }
            // completed must link the latest opened, not the first attempt's.
            let stale = node(
                realistic_report(s, m, Completed, o1.report_hash(), &ev2),
                "node 2",
            );
            let err = reg.publish(&stale, &sig, &[]).await.unwrap_err();
            assert!(
                reverted_with(&err, "FieldMismatch: report prevReportHash"),
                "{err}"
            );
            let c = node(
                realistic_report(s, m, Completed, o2.report_hash(), &ev2),
                "node 2",
            );
            let pc = reg.publish(&c, &sig, &[]).await.unwrap();
            // Nothing opens after completed; a retry of the latest opened is
            // still a retry.
            let o3 = node(
                realistic_report(s, m, Opened, o2.report_hash(), &ev1),
                "node 3",
            );
            let err = reg.publish(&o3, &sig, &ev1).await.unwrap_err();
            assert!(reverted_with(&err, "SessionClosed"), "{err}");
            assert!(
                reg.publish(&o2, &sig, &ev2)
                    .await
                    .unwrap()
                    .already_published
            );
            let err = raw(&c, &[]).await.unwrap_err();
            assert!(reverted_with(&err, "ReportExists"), "{err}");

            // Read back: every opened in chain order, then the terminal one,
            // each with its own evidence.
            let rec = reg.read_session(s, &ReadOptions::default()).await.unwrap();
            let kinds: Vec<_> = rec.reports.iter().map(|r| r.kind).collect();
            assert_eq!(kinds, [Opened, Opened, Completed]);
            let txs: Vec<_> = rec.reports.iter().map(|r| r.tx_hash).collect();
            assert_eq!(txs, [p1.tx_hash, p2.tx_hash, pc.tx_hash]);
            assert_eq!(rec.reports[0].evidence.as_ref(), ev1.as_slice());
            assert_eq!(rec.reports[1].evidence.as_ref(), ev2.as_slice());
            assert!(rec.reports[2].evidence.is_empty());
            assert_eq!(rec.reports[0].report_hash, o1.report_hash());
            assert_eq!(rec.reports[1].prev_report_hash, o1.report_hash());
            assert_eq!(rec.report(Opened).unwrap().report, o1);
            assert_eq!(rec.latest(Opened).unwrap().report, o2);
            assert_eq!(rec.opened_reports().count(), 2);
            let chunked = reg
                .read_session(s, &ReadOptions { max_block_range: 1 })
                .await
                .unwrap();
            assert_eq!(chunked, rec);

            // A replacement that aborts before its own opened links the
            // previous attempt's opened; nothing follows it.
            let s2 = keccak256(b"aborted replacement");
            reg.open_session(s2, m, chain.sender()).await.unwrap();
            let o1 = node(realistic_report(s2, m, Opened, B256::ZERO, &ev1), "node 1");
            reg.publish(&o1, &sig, &ev1).await.unwrap();
            let a2 = node(
                realistic_report(s2, m, Aborted, o1.report_hash(), &ev2),
                "node 2",
            );
            reg.publish(&a2, &sig, &ev2).await.unwrap();
            let o3 = node(
                realistic_report(s2, m, Opened, o1.report_hash(), &ev1),
                "node 3",
            );
            let err = reg.publish(&o3, &sig, &ev1).await.unwrap_err();
            assert!(reverted_with(&err, "SessionClosed"), "{err}");
            let rec = reg.read_session(s2, &ReadOptions::default()).await.unwrap();
            let kinds: Vec<_> = rec.reports.iter().map(|r| r.kind).collect();
            assert_eq!(kinds, [Opened, Aborted]);
            assert_eq!(rec.reports[1].evidence.as_ref(), ev2.as_slice());
            assert_eq!(rec.info.opened_count, 1);
            assert!(rec.info.aborted);
        })
        .unwrap();
    }

    #[test]
    fn kind_topics() {
        assert_eq!(kind_topic(ReportKind::Completed), B256::with_last_byte(2));
    }
}
