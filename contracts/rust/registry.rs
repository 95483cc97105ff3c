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
    /// A different report already holds this (session, kind): write-once.
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
    /// Whether the `opened` report was published.
    pub opened: bool,
    /// Whether an `aborted` report was published.
    pub aborted: bool,
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
    /// The TEE evidence, as in calldata (may be empty for `completed`).
    pub evidence: Bytes,
    /// keccak256(report_bytes), equal to the stored and the emitted hash.
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
    /// Reports in kind order (opened, completed, aborted), those present.
    pub reports: Vec<PublishedReport>,
}

impl SessionRecord {
    /// The report of one kind, if published.
    pub fn report(&self, kind: ReportKind) -> Option<&PublishedReport> {
        self.reports.iter().find(|r| r.kind == kind)
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
        let gas_used = self
            .chain
            .receipt(log.tx_hash)
            .await?
            .map(|r| r.gas_used)
            .unwrap_or(0);
        Ok(OpenedSession {
            tx_hash: log.tx_hash,
            block_number: log.block_number,
            gas_used,
            already_open: true,
        })
    }

    /// Publishes a signed report (its kind and session come from the
    /// report). Idempotent: when the identical report is already on chain
    /// nothing is sent and the original transaction is returned; a different
    /// report for a taken (session, kind) is [`RegistryError::Conflict`].
    /// Transport failures are retried (bounded, exponential backoff); each
    /// retry first re-reads the chain, so a send that did land is never
    /// repeated. Reverts come back decoded (e.g. `NotPublisher: ...`).
    pub async fn publish(
        &self,
        report: &IntegrityReport,
        signature: &[u8],
        evidence: &[u8],
    ) -> Result<Published, RegistryError> {
        let kind =
            ReportKind::from_code(report.kind).ok_or(RegistryError::InvalidKind(report.kind))?;
        let session_id = report.sessionId;
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
        self.with_backoff(|| async {
            if let Some(stored) = self.report_hash(session_id, kind).await? {
                return self.already(session_id, kind, stored, report_hash).await;
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
                Err(ChainError::Reverted { data, reason }) => match registry_error(&data) {
                    Some(R::SessionRegistryErrors::ReportExists(e)) => {
                        self.already(session_id, kind, e.reportHash, report_hash)
                            .await
                    }
                    _ => Err(RegistryError::Chain(ChainError::Reverted { data, reason })),
                },
                // Mined but failed: typically a resend after an unconfirmed
                // first attempt, which then landed first. The chain decides.
                Err(failed @ ChainError::FailedOnChain { .. }) => {
                    match self.report_hash(session_id, kind).await? {
                        Some(stored) => self.already(session_id, kind, stored, report_hash).await,
                        None => Err(failed.into()),
                    }
                }
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    async fn already(
        &self,
        session_id: B256,
        kind: ReportKind,
        stored: B256,
        ours: B256,
    ) -> Result<Published, RegistryError> {
        if stored != ours {
            return Err(RegistryError::Conflict {
                session_id,
                kind: kind.as_str(),
                stored,
                ours,
            });
        }
        let info = self
            .session(session_id)
            .await?
            .ok_or(RegistryError::UnknownSession(session_id))?;
        let logs = self
            .scan(
                R::ReportPublished::SIGNATURE_HASH,
                session_id,
                info.opened_block,
                &ReadOptions::default(),
                |l| l.iter().any(|l| l.topics.get(2) == Some(&kind_topic(kind))),
            )
            .await?;
        let log = logs
            .iter()
            .find(|l| l.topics.get(2) == Some(&kind_topic(kind)))
            .ok_or(RegistryError::MissingEvent {
                session_id,
                kind: kind.as_str(),
                from_block: info.opened_block,
            })?;
        let gas_used = self
            .chain
            .receipt(log.tx_hash)
            .await?
            .map(|r| r.gas_used)
            .unwrap_or(0);
        Ok(Published {
            kind,
            session_id,
            report_hash: ours,
            tx_hash: log.tx_hash,
            block_number: log.block_number,
            gas_used,
            already_published: true,
        })
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

    /// Reads a session's reports back: finds the `ReportPublished` events,
    /// fetches each transaction's calldata, decodes report, signature and
    /// evidence, and checks keccak256(report) equals both the emitted and
    /// the stored hash.
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
        let logs = if stored.is_empty() {
            Vec::new()
        } else {
            self.scan(
                R::ReportPublished::SIGNATURE_HASH,
                session_id,
                info.opened_block,
                options,
                |l| {
                    stored
                        .iter()
                        .all(|(k, _)| l.iter().any(|l| l.topics.get(2) == Some(&kind_topic(*k))))
                },
            )
            .await?
        };
        let mut reports = Vec::new();
        for (kind, stored_hash) in stored {
            let log = logs
                .iter()
                .find(|l| l.topics.get(2) == Some(&kind_topic(kind)))
                .ok_or(RegistryError::MissingEvent {
                    session_id,
                    kind: kind.as_str(),
                    from_block: info.opened_block,
                })?;
            let event = R::ReportPublished::decode_raw_log(log.topics.iter().copied(), &log.data)
                .map_err(|e| RegistryError::Decode {
                what: "ReportPublished event".to_string(),
                detail: e.to_string(),
            })?;
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
            if calldata_hash != stored_hash
                || event.reportHash != stored_hash
                || call.sessionId != session_id
            {
                return Err(RegistryError::HashMismatch {
                    kind: kind.as_str(),
                    tx_hash: log.tx_hash,
                    calldata: calldata_hash,
                    event: event.reportHash,
                    stored: stored_hash,
                });
            }
            let report = IntegrityReport::from_abi_bytes(&call.report).map_err(|e| {
                RegistryError::Decode {
                    what: format!("{} report of tx {}", kind.as_str(), log.tx_hash),
                    detail: e.to_string(),
                }
            })?;
            reports.push(PublishedReport {
                kind,
                report,
                report_bytes: call.report,
                signature: call.signature,
                evidence: call.evidence,
                report_hash: stored_hash,
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

    #[test]
    fn kind_topics() {
        assert_eq!(kind_topic(ReportKind::Completed), B256::with_last_byte(2));
    }
}
