//! Any JSON-RPC chain through alloy's HTTP provider and a local signer, with
//! presets for opBNB mainnet, opBNB testnet and a local anvil.
//!
//! Keys come from a file or the `SEALROOM_CHAIN_KEY` environment variable,
//! never from the command line (argv is visible to every user of the machine
//! and lands in shell history); nothing here ever prints a key.

use std::path::Path;
use std::time::Duration;

use alloy::consensus::Transaction as _;
use alloy::network::{EthereumWallet, TransactionBuilder, TransactionResponse};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::{Filter, TransactionReceipt, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use alloy::transports::TransportError;
use alloy_primitives::{Address, Bytes, B256};

use crate::chain::{Chain, ChainError, ChainKind, ChainLog, LogQuery, TxOutcome, TxRecord};

/// Environment variable holding a chain key (hex, with or without `0x`).
pub const CHAIN_KEY_ENV: &str = "SEALROOM_CHAIN_KEY";

/// anvil's first well-known development key (account
/// `0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266`). Public knowledge, worthless
/// anywhere but a development chain: used only for the `anvil` preset.
pub const ANVIL_DEV_KEY: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

/// A named chain: chain id, default endpoint, default confirmations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Preset {
    /// opBNB mainnet, chain id 204.
    OpbnbMainnet,
    /// opBNB testnet, chain id 5611.
    OpbnbTestnet,
    /// A local anvil, chain id 31337.
    Anvil,
}

/// What a `--chain` flag (or a scenario's `[chain] target`) names, parsed
/// in one place for every command: the embedded development chain, a preset,
/// or a JSON-RPC URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChainTarget {
    /// The in-process development chain.
    Embedded,
    /// A named chain.
    Preset(Preset),
    /// Any JSON-RPC node (`http://` or `https://`).
    Url(String),
}

impl ChainTarget {
    /// Parses `embedded`, `anvil`, `opbnb-testnet`, `opbnb-mainnet` or an
    /// `http(s)://` URL; the error lists what is accepted.
    pub fn parse(spec: &str) -> Result<Self, String> {
        if spec == "embedded" {
            Ok(Self::Embedded)
        } else if let Some(p) = Preset::from_name(spec) {
            Ok(Self::Preset(p))
        } else if spec.starts_with("http://") || spec.starts_with("https://") {
            Ok(Self::Url(spec.to_string()))
        } else {
            Err(format!(
                "{spec:?} is neither embedded, anvil, opbnb-testnet, opbnb-mainnet nor an http(s) URL"
            ))
        }
    }

    /// Whether publishing here needs the operator's funded key (from
    /// `--chain-key-file` or `SEALROOM_CHAIN_KEY`): every chain but the
    /// embedded one and anvil, whose first dev key is used.
    pub fn needs_operator_key(&self) -> bool {
        !matches!(self, Self::Embedded | Self::Preset(Preset::Anvil))
    }

    /// The spelling `parse` accepts.
    pub fn as_spec(&self) -> &str {
        match self {
            Self::Embedded => "embedded",
            Self::Preset(p) => p.name(),
            Self::Url(u) => u,
        }
    }
}

impl Preset {
    /// Parses `opbnb-mainnet`, `opbnb-testnet` or `anvil`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "opbnb-mainnet" => Some(Self::OpbnbMainnet),
            "opbnb-testnet" => Some(Self::OpbnbTestnet),
            "anvil" => Some(Self::Anvil),
            _ => None,
        }
    }

    /// The preset's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::OpbnbMainnet => "opbnb-mainnet",
            Self::OpbnbTestnet => "opbnb-testnet",
            Self::Anvil => "anvil",
        }
    }

    /// The chain id the node must report.
    pub fn chain_id(self) -> u64 {
        match self {
            Self::OpbnbMainnet => 204,
            Self::OpbnbTestnet => 5611,
            Self::Anvil => 31337,
        }
    }

    /// The public endpoint BNB Chain documents for the network (rate
    /// limited; use your own node or provider for production traffic).
    pub fn default_url(self) -> &'static str {
        match self {
            Self::OpbnbMainnet => "https://opbnb-mainnet-rpc.bnbchain.org",
            Self::OpbnbTestnet => "https://opbnb-testnet-rpc.bnbchain.org",
            Self::Anvil => "http://127.0.0.1:8545",
        }
    }

    /// Confirmations to wait for by default: opBNB's sequencer orders
    /// transactions within a second, a few blocks guard against a reorg of
    /// the unsafe head; anvil mines instantly and nothing else.
    pub fn default_confirmations(self) -> u64 {
        match self {
            Self::OpbnbMainnet | Self::OpbnbTestnet => 3,
            Self::Anvil => 1,
        }
    }
}

/// A secp256k1 chain key. `Debug` shows the address only.
#[derive(Clone)]
pub struct ChainKey(PrivateKeySigner);

impl std::fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChainKey({})", self.0.address())
    }
}

impl ChainKey {
    /// Parses a hex private key (`0x` optional, surrounding whitespace
    /// ignored). The error never contains the input.
    pub fn from_hex(text: &str) -> Result<Self, ChainError> {
        let t = text.trim();
        let t = t.strip_prefix("0x").unwrap_or(t);
        if t.len() != 64 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ChainError::Key(
                "expected 32 bytes of hex (64 hex digits, 0x optional)".to_string(),
            ));
        }
        t.parse::<PrivateKeySigner>()
            .map(Self)
            .map_err(|_| ChainError::Key("not a valid secp256k1 private key".to_string()))
    }

    /// The well-known anvil development key.
    pub fn anvil_dev() -> Self {
        // The constant is a valid key; fall back to a fresh random key rather
        // than panic if it ever were not.
        Self::from_hex(ANVIL_DEV_KEY).unwrap_or_else(|_| Self(PrivateKeySigner::random()))
    }

    /// The key's address.
    pub fn address(&self) -> Address {
        self.0.address()
    }
}

/// Reads the chain key from `file` if given, else from `SEALROOM_CHAIN_KEY`;
/// `Ok(None)` when neither is set.
pub fn load_chain_key(file: Option<&Path>) -> Result<Option<ChainKey>, ChainError> {
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ChainError::Key(format!("cannot read {}: {e}", path.display())))?;
        return ChainKey::from_hex(&text)
            .map(Some)
            .map_err(|e| ChainError::Key(format!("{}: {e}", path.display())));
    }
    match std::env::var(CHAIN_KEY_ENV) {
        Ok(text) if !text.trim().is_empty() => ChainKey::from_hex(&text)
            .map(Some)
            .map_err(|e| ChainError::Key(format!("{CHAIN_KEY_ENV}: {e}"))),
        _ => Ok(None),
    }
}

/// Knobs of the JSON-RPC chain.
#[derive(Clone, Debug)]
pub struct RpcOptions {
    /// Attempts per request on transport errors (at least 1).
    pub attempts: u32,
    /// Delay before the first retry; doubles each time.
    pub backoff: Duration,
    /// How long to wait for a transaction's confirmations.
    pub confirmation_timeout: Duration,
    /// Timeout of each HTTP request (a hung node must not hang a publish).
    pub request_timeout: Duration,
}

impl Default for RpcOptions {
    fn default() -> Self {
        Self {
            attempts: 4,
            backoff: Duration::from_millis(500),
            confirmation_timeout: Duration::from_secs(120),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// A JSON-RPC chain (see the module docs).
#[derive(Clone)]
pub struct RpcChain {
    provider: DynProvider,
    endpoint: String,
    name: String,
    chain_id: u64,
    sender: Address,
    /// No signer: reads only (a verifier needs no key).
    read_only: bool,
    options: RpcOptions,
}

impl std::fmt::Debug for RpcChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcChain")
            .field("endpoint", &self.endpoint)
            .field("chain_id", &self.chain_id)
            .field("sender", &self.sender)
            .finish_non_exhaustive()
    }
}

/// The URL without user info, query or fragment: endpoints often embed API
/// keys, which must not reach logs.
fn redact(url: &reqwest_url::Url) -> String {
    format!(
        "{}://{}{}",
        url.scheme(),
        url.host_str().unwrap_or("?"),
        url.port().map(|p| format!(":{p}")).unwrap_or_default()
    )
}

mod reqwest_url {
    pub use alloy::transports::http::reqwest::{Client, Url};
}

impl RpcChain {
    /// Connects to `url`, checks the node's chain id against
    /// `expected_chain_id` when given, and signs with `key`.
    pub async fn connect(
        url: &str,
        key: ChainKey,
        expected_chain_id: Option<u64>,
        name: &str,
        options: RpcOptions,
    ) -> Result<Self, ChainError> {
        Self::connect_inner(url, Some(key), expected_chain_id, name, options).await
    }

    /// Connects without a key, for readers and verifiers: calls, logs and
    /// transactions work; `deploy` and `send` fail with
    /// [`ChainError::Config`].
    pub async fn connect_read_only(
        url: &str,
        expected_chain_id: Option<u64>,
        options: RpcOptions,
    ) -> Result<Self, ChainError> {
        Self::connect_inner(
            url,
            None,
            expected_chain_id,
            "json-rpc (read-only)",
            options,
        )
        .await
    }

    async fn connect_inner(
        url: &str,
        key: Option<ChainKey>,
        expected_chain_id: Option<u64>,
        name: &str,
        options: RpcOptions,
    ) -> Result<Self, ChainError> {
        let parsed: reqwest_url::Url = url
            .parse()
            .map_err(|e| ChainError::Config(format!("invalid RPC URL: {e}")))?;
        let endpoint = redact(&parsed);
        let sender = key.as_ref().map(ChainKey::address).unwrap_or(Address::ZERO);
        let read_only = key.is_none();
        let http = reqwest_url::Client::builder()
            .timeout(options.request_timeout)
            .build()
            .map_err(|e| ChainError::Config(format!("HTTP client: {e}")))?;
        // Simple (not cached) nonce management: the gas estimate and the
        // nonce are filled concurrently, so with a cached nonce a send whose
        // estimate reverts would burn a nonce locally and wedge every later
        // transaction behind the gap.
        let provider = match key {
            Some(key) => ProviderBuilder::new()
                .disable_recommended_fillers()
                .with_gas_estimation()
                .with_simple_nonce_management()
                .fetch_chain_id()
                .wallet(EthereumWallet::from(key.0))
                .connect_reqwest(http, parsed)
                .erased(),
            None => ProviderBuilder::new()
                .disable_recommended_fillers()
                .connect_reqwest(http, parsed)
                .erased(),
        };
        let mut this = Self {
            provider,
            endpoint,
            name: name.to_string(),
            chain_id: 0,
            sender,
            read_only,
            options,
        };
        let actual = this
            .retry(|p| async move { p.get_chain_id().await })
            .await?;
        if let Some(expected) = expected_chain_id {
            if expected != actual {
                return Err(ChainError::ChainIdMismatch { expected, actual });
            }
        }
        this.chain_id = actual;
        Ok(this)
    }

    /// Connects to a preset (`url` overrides its default endpoint); the key
    /// defaults to anvil's development key for the `anvil` preset and is
    /// required otherwise.
    pub async fn from_preset(
        preset: Preset,
        url: Option<&str>,
        key: Option<ChainKey>,
        options: RpcOptions,
    ) -> Result<Self, ChainError> {
        let key = match (key, preset) {
            (Some(k), _) => k,
            (None, Preset::Anvil) => ChainKey::anvil_dev(),
            (None, p) => {
                return Err(ChainError::Key(format!(
                    "{} needs a funded key: --chain-key-file FILE or {CHAIN_KEY_ENV}",
                    p.name()
                )))
            }
        };
        Self::connect(
            url.unwrap_or(preset.default_url()),
            key,
            Some(preset.chain_id()),
            preset.name(),
            options,
        )
        .await
    }

    /// The endpoint, without credentials.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The alloy provider, for callers needing more than the trait.
    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    /// Runs `op` with bounded retries and exponential backoff on transport
    /// errors; anything else fails at once.
    async fn retry<T, F, Fut>(&self, op: F) -> Result<T, ChainError>
    where
        F: Fn(DynProvider) -> Fut,
        Fut: std::future::Future<Output = Result<T, TransportError>>,
    {
        let attempts = self.options.attempts.max(1);
        let mut delay = self.options.backoff;
        let mut attempt = 1;
        loop {
            match op(self.provider.clone()).await {
                Ok(v) => return Ok(v),
                Err(e) => {
                    let err = self.classify(e);
                    if !err.is_transient() || attempt >= attempts {
                        return Err(err);
                    }
                }
            }
            tokio::time::sleep(delay).await;
            delay = delay.saturating_mul(2);
            attempt += 1;
        }
    }

    /// Maps an alloy error: revert data first, then retryable transport
    /// failures (including HTTP 429 / 5xx and rate-limit responses), then a
    /// plain node error.
    fn classify(&self, e: TransportError) -> ChainError {
        if let Some(resp) = e.as_error_resp() {
            if let Some(data) = resp.as_revert_data() {
                return ChainError::reverted(data);
            }
            if resp.message.contains("execution reverted") || resp.message.contains("revert") {
                return ChainError::Reverted {
                    reason: resp.message.to_string(),
                    data: Bytes::new(),
                };
            }
        }
        let rate_limited = e.as_error_resp().is_some_and(|r| {
            r.code == 429
                || r.code == -32005
                || r.message.to_ascii_lowercase().contains("rate limit")
        });
        if rate_limited || e.is_transport_error() {
            return ChainError::Transport {
                endpoint: self.endpoint.clone(),
                detail: e.to_string(),
            };
        }
        ChainError::Node(e.to_string())
    }

    async fn send_request(
        &self,
        req: TransactionRequest,
        confirmations: u64,
    ) -> Result<TxOutcome, ChainError> {
        if self.read_only {
            return Err(ChainError::Config(format!(
                "{} was opened read-only (no chain key): it cannot send transactions",
                self.endpoint
            )));
        }
        // Not retried here: a resend after a transport error could land
        // twice. The registry retries at its level, after re-reading the
        // chain (publication is idempotent there).
        let pending = self
            .provider
            .send_transaction(req.clone())
            .await
            .map_err(|e| self.classify(e))?;
        let tx_hash = *pending.tx_hash();
        let receipt = pending
            .with_required_confirmations(confirmations.max(1))
            .with_timeout(Some(self.options.confirmation_timeout))
            .get_receipt()
            .await
            .map_err(|e| ChainError::Unconfirmed {
                tx_hash,
                detail: e.to_string(),
            })?;
        if !receipt.status() {
            // Replay the call at its block to recover the reason.
            let reason = match self
                .provider
                .call(req)
                .block(receipt.block_number.unwrap_or_default().into())
                .await
            {
                Err(e) => self.classify(e).to_string(),
                Ok(_) => "reverted (no reason on replay)".to_string(),
            };
            return Err(ChainError::FailedOnChain {
                tx_hash,
                gas_used: receipt.gas_used,
                reason,
            });
        }
        Ok(outcome_of(&receipt))
    }
}

fn outcome_of(receipt: &TransactionReceipt) -> TxOutcome {
    let block_number = receipt.block_number.unwrap_or_default();
    TxOutcome {
        tx_hash: receipt.transaction_hash,
        block_number,
        gas_used: receipt.gas_used,
        contract_address: receipt.contract_address,
        logs: receipt
            .inner
            .logs()
            .iter()
            .map(|l| ChainLog {
                address: l.inner.address,
                topics: l.inner.data.topics().to_vec(),
                data: l.inner.data.data.clone(),
                tx_hash: l.transaction_hash.unwrap_or(receipt.transaction_hash),
                block_number: l.block_number.unwrap_or(block_number),
            })
            .collect(),
    }
}

impl Chain for RpcChain {
    fn kind(&self) -> ChainKind {
        ChainKind::Rpc
    }

    fn chain_id(&self) -> u64 {
        self.chain_id
    }

    fn label(&self) -> String {
        format!(
            "{} (chain id {}) at {}",
            self.name, self.chain_id, self.endpoint
        )
    }

    fn sender(&self) -> Address {
        self.sender
    }

    async fn deploy(&self, init_code: Bytes, confirmations: u64) -> Result<TxOutcome, ChainError> {
        let req = TransactionRequest::default()
            .with_from(self.sender)
            .with_deploy_code(init_code);
        self.send_request(req, confirmations).await
    }

    async fn send(
        &self,
        to: Address,
        input: Bytes,
        confirmations: u64,
    ) -> Result<TxOutcome, ChainError> {
        let req = TransactionRequest::default()
            .with_from(self.sender)
            .with_to(to)
            .with_input(input);
        self.send_request(req, confirmations).await
    }

    async fn call(&self, to: Address, input: Bytes) -> Result<Bytes, ChainError> {
        let req = TransactionRequest::default().with_to(to).with_input(input);
        self.retry(|p| {
            let req = req.clone();
            async move { p.call(req).await }
        })
        .await
    }

    async fn block_number(&self) -> Result<u64, ChainError> {
        self.retry(|p| async move { p.get_block_number().await })
            .await
    }

    async fn logs(&self, query: &LogQuery) -> Result<Vec<ChainLog>, ChainError> {
        let mut filter = Filter::new()
            .address(query.address)
            .event_signature(query.topic0)
            .from_block(query.from_block);
        filter = match query.to_block {
            Some(b) => filter.to_block(b),
            None => filter.to_block(alloy::eips::BlockNumberOrTag::Latest),
        };
        if let Some(t1) = query.topic1 {
            filter = filter.topic1(t1);
        }
        let logs = self
            .retry(|p| {
                let filter = filter.clone();
                async move { p.get_logs(&filter).await }
            })
            .await?;
        Ok(logs
            .into_iter()
            .filter(|l| !l.removed)
            .map(|l| ChainLog {
                address: l.inner.address,
                topics: l.inner.data.topics().to_vec(),
                data: l.inner.data.data.clone(),
                tx_hash: l.transaction_hash.unwrap_or_default(),
                block_number: l.block_number.unwrap_or_default(),
            })
            .collect())
    }

    async fn transaction(&self, tx_hash: B256) -> Result<Option<TxRecord>, ChainError> {
        let tx = self
            .retry(|p| async move { p.get_transaction_by_hash(tx_hash).await })
            .await?;
        Ok(tx.map(|t| TxRecord {
            tx_hash,
            from: TransactionResponse::from(&t),
            to: t.to(),
            input: t.input().clone(),
            block_number: TransactionResponse::block_number(&t),
        }))
    }

    async fn receipt(&self, tx_hash: B256) -> Result<Option<TxOutcome>, ChainError> {
        let r = self
            .retry(|p| async move { p.get_transaction_receipt(tx_hash).await })
            .await?;
        Ok(r.filter(|r| r.status()).map(|r| outcome_of(&r)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anvil_dev_key_is_the_first_dev_account() {
        assert_eq!(
            ChainKey::anvil_dev().address(),
            crate::embedded::EMBEDDED_SENDER
        );
    }

    #[test]
    fn keys_parse_without_echoing_input() {
        let k = ChainKey::from_hex(&format!("0x{ANVIL_DEV_KEY}\n")).unwrap();
        assert_eq!(k.address(), crate::embedded::EMBEDDED_SENDER);
        assert!(!format!("{k:?}").contains(ANVIL_DEV_KEY));
        let secret = "zz".repeat(32);
        let err = ChainKey::from_hex(&secret).unwrap_err().to_string();
        assert!(!err.contains(&secret));
        assert!(ChainKey::from_hex("00").is_err());
    }

    #[test]
    fn presets() {
        assert_eq!(
            Preset::from_name("opbnb-mainnet").map(Preset::chain_id),
            Some(204)
        );
        assert_eq!(
            Preset::from_name("opbnb-testnet").map(Preset::chain_id),
            Some(5611)
        );
        assert_eq!(
            Preset::from_name("anvil").map(Preset::chain_id),
            Some(31337)
        );
        assert_eq!(Preset::from_name("mainnet"), None);
        assert_eq!(ChainTarget::parse("embedded"), Ok(ChainTarget::Embedded));
        assert_eq!(
            ChainTarget::parse("opbnb-testnet"),
            Ok(ChainTarget::Preset(Preset::OpbnbTestnet))
        );
        assert_eq!(
            ChainTarget::parse("https://rpc.example"),
            Ok(ChainTarget::Url("https://rpc.example".into()))
        );
        for bad in ["mainnet", "ftp://x", "", "Embedded"] {
            assert!(
                ChainTarget::parse(bad).unwrap_err().contains("neither"),
                "{bad}"
            );
        }
        for (spec, needs) in [
            ("embedded", false),
            ("anvil", false),
            ("opbnb-testnet", true),
            ("opbnb-mainnet", true),
            ("http://127.0.0.1:8545", true),
        ] {
            assert_eq!(
                ChainTarget::parse(spec).unwrap().needs_operator_key(),
                needs,
                "{spec}"
            );
        }
    }
}
