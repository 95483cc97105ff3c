//! The embedded development chain: an in-process revm EVM running the same
//! committed bytecode as a public chain, its state persisted as one JSON file
//! in a directory, so `sealroom run` needs nothing but cargo and its chain
//! survives a restart.
//!
//! It is a single-writer chain with instant finality: every transaction is
//! its own block, a transaction that would revert is refused (like a node
//! whose gas estimate fails) and never recorded, there is no gas price and
//! no signature (transactions come from one well-known development account;
//! their "hash" is a keccak256 over chain id, sender, nonce, recipient and
//! calldata). None of that is a security property: every output labels it
//! [`EMBEDDED_LABEL`].

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use alloy_primitives::{address, keccak256, Address, Bytes, B256, U256};
use revm::context::result::{ExecutionResult, Output};
use revm::context::{Context, TxEnv};
use revm::database::{CacheDB, EmptyDB};
use revm::primitives::hardfork::SpecId;
use revm::primitives::TxKind;
use revm::state::{AccountInfo, Bytecode};
use revm::{DatabaseCommit, ExecuteEvm, MainBuilder, MainContext};
use serde::{Deserialize, Serialize};

use crate::chain::{Chain, ChainError, ChainKind, ChainLog, LogQuery, TxOutcome, TxRecord};

/// Chain id of the embedded chain (the usual development chain id).
pub const EMBEDDED_CHAIN_ID: u64 = 31337;
/// The label every output carries for this chain.
pub const EMBEDDED_LABEL: &str = "embedded development chain";
/// The sender of every transaction: anvil's first development account, so
/// addresses match what developers see on anvil.
pub const EMBEDDED_SENDER: Address = address!("f39Fd6e51aad88F6F4ce6aB8827279cffFb92266");

/// The state file inside the chain directory.
const STATE_FILE: &str = "chain.json";
/// Held (advisory lock) while a process writes the chain.
const LOCK_FILE: &str = "chain.lock";
/// Version of the state file's format.
const FORMAT: u32 = 1;
/// Gas limit of each transaction (and block).
const GAS_LIMIT: u64 = 30_000_000;
/// The fork rules: Prague, as a current anvil and opBNB run them.
const SPEC: SpecId = SpecId::PRAGUE;

/// One account of the persisted state.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct StoredAccount {
    balance: U256,
    nonce: u64,
    #[serde(default, skip_serializing_if = "is_empty_bytes")]
    code: Bytes,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    storage: BTreeMap<U256, U256>,
}

/// One log of a stored transaction.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct StoredLog {
    address: Address,
    topics: Vec<B256>,
    data: Bytes,
}

/// A mined transaction with its receipt.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct StoredTx {
    hash: B256,
    block_number: u64,
    timestamp: u64,
    from: Address,
    to: Option<Address>,
    input: Bytes,
    gas_used: u64,
    contract_address: Option<Address>,
    logs: Vec<StoredLog>,
}

/// The whole chain: accounts and the transaction history (receipts, logs).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct StoredChain {
    format: u32,
    label: String,
    chain_id: u64,
    block_number: u64,
    last_timestamp: u64,
    accounts: BTreeMap<Address, StoredAccount>,
    transactions: Vec<StoredTx>,
}

impl StoredChain {
    fn genesis() -> Self {
        let mut accounts = BTreeMap::new();
        accounts.insert(
            EMBEDDED_SENDER,
            // 10_000 ether, as anvil funds its development accounts.
            StoredAccount {
                balance: U256::from(10_000u64) * U256::from(10u64).pow(U256::from(18u64)),
                ..Default::default()
            },
        );
        Self {
            format: FORMAT,
            label: EMBEDDED_LABEL.to_string(),
            chain_id: EMBEDDED_CHAIN_ID,
            block_number: 0,
            last_timestamp: now(),
            accounts,
            transactions: Vec::new(),
        }
    }

    fn to_db(&self) -> CacheDB<EmptyDB> {
        let mut db = CacheDB::new(EmptyDB::default());
        for (addr, acc) in &self.accounts {
            let code = Bytecode::new_raw(acc.code.clone());
            let info = AccountInfo::new(acc.balance, acc.nonce, code.hash_slow(), code);
            db.insert_account_info(*addr, info);
            for (slot, value) in &acc.storage {
                // Infallible: the backing database is empty.
                let _ = db.insert_account_storage(*addr, *slot, *value);
            }
        }
        db
    }

    /// Re-reads every account the EVM touched from the cache.
    fn sync_from(&mut self, db: &CacheDB<EmptyDB>) {
        for (addr, acc) in &db.cache.accounts {
            let Some(info) = acc.info() else {
                self.accounts.remove(addr);
                continue;
            };
            let code = info
                .code
                .clone()
                .or_else(|| db.cache.contracts.get(&info.code_hash).cloned())
                .map(|c| c.original_bytes())
                .unwrap_or_default();
            let storage: BTreeMap<U256, U256> = acc
                .storage
                .iter()
                .filter(|(_, v)| !v.is_zero())
                .map(|(k, v)| (*k, *v))
                .collect();
            if info.balance.is_zero() && info.nonce == 0 && code.is_empty() && storage.is_empty() {
                self.accounts.remove(addr);
                continue;
            }
            self.accounts.insert(
                *addr,
                StoredAccount {
                    balance: info.balance,
                    nonce: info.nonce,
                    code,
                    storage,
                },
            );
        }
    }
}

fn is_empty_bytes(b: &Bytes) -> bool {
    b.is_empty()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// In-memory state plus its EVM database.
struct Inner {
    chain: StoredChain,
    db: CacheDB<EmptyDB>,
}

/// The in-process development chain (see the module docs).
pub struct EmbeddedChain {
    dir: PathBuf,
    inner: Mutex<Inner>,
    /// Keeps the directory's advisory lock for the chain's lifetime (`None`
    /// for a read-only snapshot).
    _lock: Option<File>,
}

impl std::fmt::Debug for EmbeddedChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedChain")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl EmbeddedChain {
    /// Opens (or creates) the chain persisted in `dir`, locking it against a
    /// second writer process.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, ChainError> {
        let dir = dir.as_ref().to_path_buf();
        let state_err = |path: &Path, detail: String| ChainError::State {
            path: path.to_path_buf(),
            detail,
        };
        fs::create_dir_all(&dir).map_err(|e| state_err(&dir, e.to_string()))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = File::create(&lock_path).map_err(|e| state_err(&lock_path, e.to_string()))?;
        lock.try_lock().map_err(|e| {
            state_err(
                &lock_path,
                format!("another process is using this embedded chain ({e})"),
            )
        })?;
        let chain = Self::load_or_genesis(&dir)?;
        let this = Self {
            dir,
            inner: Mutex::new(Inner {
                db: chain.to_db(),
                chain,
            }),
            _lock: Some(lock),
        };
        this.save(&this.lock_inner())?;
        Ok(this)
    }

    /// A read-only snapshot of the chain in `dir` (no lock taken), for
    /// verifiers running beside the process that writes it. Transactions on
    /// a snapshot are refused.
    pub fn open_snapshot(dir: impl AsRef<Path>) -> Result<Self, ChainError> {
        let dir = dir.as_ref().to_path_buf();
        let path = dir.join(STATE_FILE);
        if !path.exists() {
            return Err(ChainError::State {
                path,
                detail: "no embedded chain here".to_string(),
            });
        }
        let chain = Self::load_or_genesis(&dir)?;
        Ok(Self {
            dir,
            inner: Mutex::new(Inner {
                db: chain.to_db(),
                chain,
            }),
            _lock: None,
        })
    }

    /// The directory holding the chain's state.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn load_or_genesis(dir: &Path) -> Result<StoredChain, ChainError> {
        let path = dir.join(STATE_FILE);
        let state_err = |detail: String| ChainError::State {
            path: path.clone(),
            detail,
        };
        match fs::read(&path) {
            Ok(bytes) => {
                let chain: StoredChain =
                    serde_json::from_slice(&bytes).map_err(|e| state_err(e.to_string()))?;
                if chain.format != FORMAT || chain.chain_id != EMBEDDED_CHAIN_ID {
                    return Err(state_err(format!(
                        "format {} / chain id {}, expected {FORMAT} / {EMBEDDED_CHAIN_ID}",
                        chain.format, chain.chain_id
                    )));
                }
                Ok(chain)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(StoredChain::genesis()),
            Err(e) => Err(state_err(e.to_string())),
        }
    }

    fn lock_inner(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves the in-memory state as the
        // last successful transaction left it (state is only replaced after
        // a commit), so a poisoned lock is safe to reuse.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes the state atomically (temp file + rename) so a crash never
    /// leaves a half-written chain.
    fn save(&self, inner: &Inner) -> Result<(), ChainError> {
        let path = self.dir.join(STATE_FILE);
        let tmp = self.dir.join(format!("{STATE_FILE}.tmp"));
        let state_err = |detail: String| ChainError::State {
            path: path.clone(),
            detail,
        };
        let bytes = serde_json::to_vec(&inner.chain).map_err(|e| state_err(e.to_string()))?;
        let mut f = File::create(&tmp).map_err(|e| state_err(e.to_string()))?;
        f.write_all(&bytes)
            .and_then(|_| f.sync_all())
            .map_err(|e| state_err(e.to_string()))?;
        fs::rename(&tmp, &path).map_err(|e| state_err(e.to_string()))
    }

    /// Executes one transaction and, when it succeeds, commits it as a new
    /// block and persists the chain.
    fn execute(&self, to: Option<Address>, input: Bytes) -> Result<TxOutcome, ChainError> {
        if self._lock.is_none() {
            return Err(ChainError::Config(
                "this embedded chain is a read-only snapshot".to_string(),
            ));
        }
        let mut inner = self.lock_inner();
        let nonce = inner
            .chain
            .accounts
            .get(&EMBEDDED_SENDER)
            .map(|a| a.nonce)
            .unwrap_or(0);
        let block_number = inner.chain.block_number + 1;
        let timestamp = now().max(inner.chain.last_timestamp + 1);
        let tx = tx_env(to, input.clone(), Some(nonce))?;
        let result = {
            let ctx = Context::mainnet()
                .with_db(&mut inner.db)
                .modify_cfg_chained(|c| {
                    c.spec = SPEC;
                    c.chain_id = EMBEDDED_CHAIN_ID;
                })
                .modify_block_chained(|b| {
                    b.number = U256::from(block_number);
                    b.timestamp = U256::from(timestamp);
                    b.gas_limit = GAS_LIMIT;
                    b.basefee = 0;
                    b.beneficiary = Address::ZERO;
                    b.prevrandao = Some(keccak256(block_number.to_be_bytes()));
                });
            let mut evm = ctx.build_mainnet();
            evm.transact(tx)
                .map_err(|e| ChainError::Evm(e.to_string()))?
        };
        let (gas_used, logs, contract_address) = match result.result {
            ExecutionResult::Success {
                gas, logs, output, ..
            } => {
                let created = match output {
                    Output::Create(_, addr) => addr,
                    Output::Call(_) => None,
                };
                (gas.tx_gas_used(), logs, created)
            }
            ExecutionResult::Revert { output, .. } => return Err(ChainError::reverted(output)),
            ExecutionResult::Halt { reason, .. } => {
                return Err(ChainError::Reverted {
                    reason: format!("halted: {reason:?}"),
                    data: Bytes::new(),
                })
            }
        };
        inner.db.commit(result.state);
        let mut hash_input = Vec::with_capacity(8 + 20 + 8 + 20 + input.len());
        hash_input.extend_from_slice(&EMBEDDED_CHAIN_ID.to_be_bytes());
        hash_input.extend_from_slice(EMBEDDED_SENDER.as_slice());
        hash_input.extend_from_slice(&nonce.to_be_bytes());
        hash_input.extend_from_slice(to.unwrap_or(Address::ZERO).as_slice());
        hash_input.extend_from_slice(&input);
        let tx_hash = keccak256(&hash_input);
        let stored_logs: Vec<StoredLog> = logs
            .iter()
            .map(|l| StoredLog {
                address: l.address,
                topics: l.data.topics().to_vec(),
                data: l.data.data.clone(),
            })
            .collect();
        let stored = StoredTx {
            hash: tx_hash,
            block_number,
            timestamp,
            from: EMBEDDED_SENDER,
            to,
            input,
            gas_used,
            contract_address,
            logs: stored_logs,
        };
        let outcome = outcome_of(&stored);
        let mut next = inner.chain.clone();
        next.sync_from(&inner.db);
        next.block_number = block_number;
        next.last_timestamp = timestamp;
        next.transactions.push(stored);
        let previous = std::mem::replace(&mut inner.chain, next);
        if let Err(e) = self.save(&inner) {
            // Not persisted: roll the in-memory chain back too, so memory and
            // disk never disagree.
            inner.chain = previous;
            inner.db = inner.chain.to_db();
            return Err(e);
        }
        Ok(outcome)
    }

    fn view(&self, to: Address, input: Bytes) -> Result<Bytes, ChainError> {
        let inner = self.lock_inner();
        let block_number = inner.chain.block_number;
        let timestamp = inner.chain.last_timestamp;
        let tx = tx_env(Some(to), input, None)?;
        // A scratch copy: a call never changes the chain.
        let mut scratch = inner.db.clone();
        drop(inner);
        let ctx = Context::mainnet()
            .with_db(&mut scratch)
            .modify_cfg_chained(|c| {
                c.spec = SPEC;
                c.chain_id = EMBEDDED_CHAIN_ID;
                c.disable_nonce_check = true;
            })
            .modify_block_chained(|b| {
                b.number = U256::from(block_number);
                b.timestamp = U256::from(timestamp);
                b.gas_limit = GAS_LIMIT;
                b.basefee = 0;
            });
        let mut evm = ctx.build_mainnet();
        let result = evm
            .transact(tx)
            .map_err(|e| ChainError::Evm(e.to_string()))?;
        match result.result {
            ExecutionResult::Success { output, .. } => Ok(output.into_data()),
            ExecutionResult::Revert { output, .. } => Err(ChainError::reverted(output)),
            ExecutionResult::Halt { reason, .. } => Err(ChainError::Reverted {
                reason: format!("halted: {reason:?}"),
                data: Bytes::new(),
            }),
        }
    }
}

fn tx_env(to: Option<Address>, input: Bytes, nonce: Option<u64>) -> Result<TxEnv, ChainError> {
    let kind = match to {
        Some(a) => TxKind::Call(a),
        None => TxKind::Create,
    };
    TxEnv::builder()
        .caller(EMBEDDED_SENDER)
        .kind(kind)
        .data(input)
        .gas_limit(GAS_LIMIT)
        .gas_price(0)
        .nonce(nonce.unwrap_or(0))
        .chain_id(Some(EMBEDDED_CHAIN_ID))
        .build()
        .map_err(|e| ChainError::Evm(format!("{e:?}")))
}

fn outcome_of(tx: &StoredTx) -> TxOutcome {
    TxOutcome {
        tx_hash: tx.hash,
        block_number: tx.block_number,
        gas_used: tx.gas_used,
        contract_address: tx.contract_address,
        logs: tx
            .logs
            .iter()
            .map(|l| ChainLog {
                address: l.address,
                topics: l.topics.clone(),
                data: l.data.clone(),
                tx_hash: tx.hash,
                block_number: tx.block_number,
            })
            .collect(),
    }
}

impl Chain for EmbeddedChain {
    fn kind(&self) -> ChainKind {
        ChainKind::Embedded
    }

    fn chain_id(&self) -> u64 {
        EMBEDDED_CHAIN_ID
    }

    fn label(&self) -> String {
        format!(
            "{EMBEDDED_LABEL} (chain id {EMBEDDED_CHAIN_ID}, state in {})",
            self.dir.display()
        )
    }

    fn sender(&self) -> Address {
        EMBEDDED_SENDER
    }

    /// Instant finality: `confirmations` is satisfied by inclusion.
    async fn deploy(&self, init_code: Bytes, _confirmations: u64) -> Result<TxOutcome, ChainError> {
        self.execute(None, init_code)
    }

    async fn send(
        &self,
        to: Address,
        input: Bytes,
        _confirmations: u64,
    ) -> Result<TxOutcome, ChainError> {
        self.execute(Some(to), input)
    }

    async fn call(&self, to: Address, input: Bytes) -> Result<Bytes, ChainError> {
        self.view(to, input)
    }

    async fn block_number(&self) -> Result<u64, ChainError> {
        Ok(self.lock_inner().chain.block_number)
    }

    async fn logs(&self, query: &LogQuery) -> Result<Vec<ChainLog>, ChainError> {
        let inner = self.lock_inner();
        let to_block = query.to_block.unwrap_or(u64::MAX);
        Ok(inner
            .chain
            .transactions
            .iter()
            .filter(|t| t.block_number >= query.from_block && t.block_number <= to_block)
            .flat_map(|t| outcome_of(t).logs)
            .filter(|l| {
                l.address == query.address
                    && l.topics.first() == Some(&query.topic0)
                    && query.topic1.is_none_or(|t1| l.topics.get(1) == Some(&t1))
            })
            .collect())
    }

    async fn transaction(&self, tx_hash: B256) -> Result<Option<TxRecord>, ChainError> {
        let inner = self.lock_inner();
        Ok(inner
            .chain
            .transactions
            .iter()
            .find(|t| t.hash == tx_hash)
            .map(|t| TxRecord {
                tx_hash: t.hash,
                from: t.from,
                to: t.to,
                input: t.input.clone(),
                block_number: Some(t.block_number),
            }))
    }

    async fn receipt(&self, tx_hash: B256) -> Result<Option<TxOutcome>, ChainError> {
        let inner = self.lock_inner();
        Ok(inner
            .chain
            .transactions
            .iter()
            .find(|t| t.hash == tx_hash)
            .map(outcome_of))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gas::{filler, realistic_report};
    use crate::{block_on, ReadOptions, Registry, RegistryError};
    use sealroom_reports::report::ReportKind;

    #[test]
    fn publishes_reads_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let sig = filler("sig", 64);
        let ev = filler("ev", 2500);
        let s = keccak256(b"s");
        let m = keccak256(b"m");
        let (addr, opened) = block_on(async {
            let chain = EmbeddedChain::open(dir.path()).unwrap();
            let (reg, _) = Registry::deploy(&chain, 1).await.unwrap();
            reg.open_session(s, m, chain.sender()).await.unwrap();
            let r = realistic_report(s, m, ReportKind::Opened, B256::ZERO, &ev);
            let p = reg.publish(&r, &sig, &ev).await.unwrap();
            assert!(p.gas_used > 21_000);
            (reg.address(), p)
        })
        .unwrap();
        block_on(async {
            let chain = EmbeddedChain::open(dir.path()).unwrap();
            let reg = Registry::at(&chain, addr);
            let rec = reg.read_session(s, &ReadOptions::default()).await.unwrap();
            assert_eq!(rec.reports.len(), 1);
            assert_eq!(rec.reports[0].tx_hash, opened.tx_hash);
            assert_eq!(rec.reports[0].evidence.as_ref(), ev.as_slice());
            // A revert is refused, decoded, and leaves no trace.
            let before = chain.block_number().await.unwrap();
            let c = realistic_report(s, m, ReportKind::Completed, keccak256(b"wrong"), &ev);
            let err = reg.publish(&c, &sig, &[]).await.unwrap_err();
            assert!(
                matches!(&err, RegistryError::Chain(ChainError::Reverted { reason, .. })
                if reason.starts_with("FieldMismatch: report prevReportHash")),
                "{err}"
            );
            assert_eq!(chain.block_number().await.unwrap(), before);
        })
        .unwrap();
    }

    #[test]
    fn snapshot_is_read_only() {
        let dir = tempfile::tempdir().unwrap();
        drop(EmbeddedChain::open(dir.path()).unwrap());
        let snap = EmbeddedChain::open_snapshot(dir.path()).unwrap();
        let err = block_on(snap.deploy(Bytes::new(), 1)).unwrap().unwrap_err();
        assert!(matches!(err, ChainError::Config(_)));
        assert!(EmbeddedChain::open_snapshot(dir.path().join("missing")).is_err());
    }
}
