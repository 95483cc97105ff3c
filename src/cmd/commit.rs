//! `sealroom commit DATASET --key FILE [--tree-out FILE] [--blob-out FILE] [--json]`.
//!
//! One streaming pass: records into an OpenZeppelin standard Merkle tree,
//! AES-256-GCM STREAM encryption under a fresh data key, SHA-256 of the
//! ciphertext. Outputs (all written atomically, nothing half-written):
//! - the encrypted blob (`--blob-out`, default `DATASET.sealed`);
//! - the signed commitment (`--commitment-out`, default `BLOB.commitment.json`);
//! - the data key, HPKE-sealed to the party's own X25519 key and bound to the
//!   commitment (`--data-key-out`, default `BLOB.datakey`, mode 0600): the
//!   party opens it again only to grant it to an attested node;
//! - optionally the tree in `StandardMerkleTree.dump()` format (`--tree-out`).

use std::path::{Path, PathBuf};

use sealroom_member::commit::{CommitPaths, Committed};
use sealroom_protocol::identity::Identity;
use sealroom_protocol::stream::{DEFAULT_SEGMENT_SIZE, MAX_SEGMENT_SIZE};

use crate::exit::{input_err, CmdResult, Failure};

/// Arguments of `sealroom commit`.
#[derive(clap::Args)]
pub struct Args {
    /// The dataset: CSV with a header line of column names.
    dataset: PathBuf,
    /// The party's identity file (signs the commitment; its X25519 key seals the data key).
    #[arg(long)]
    key: PathBuf,
    /// Write the record tree in OpenZeppelin `StandardMerkleTree.dump()` JSON format.
    #[arg(long)]
    tree_out: Option<PathBuf>,
    /// Where to write the encrypted blob [default: DATASET.sealed].
    #[arg(long)]
    blob_out: Option<PathBuf>,
    /// Where to write the signed commitment [default: BLOB.commitment.json].
    #[arg(long)]
    commitment_out: Option<PathBuf>,
    /// Where to write the self-sealed data key [default: BLOB.datakey].
    #[arg(long)]
    data_key_out: Option<PathBuf>,
    /// Plaintext bytes per encrypted segment.
    #[arg(long, default_value_t = DEFAULT_SEGMENT_SIZE)]
    segment_size: u32,
    /// Print one JSON object on stdout and nothing else there.
    #[arg(long)]
    json: bool,
}

fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Commits with a progress bar labelled `label`; errors as the command reports them.
fn commit_to_files(
    dataset: &Path,
    party: &Identity,
    paths: &CommitPaths,
    segment_size: u32,
    label: &str,
) -> Result<Committed, Failure> {
    sealroom_runner::commit_with_bar(dataset, party, paths, segment_size, label)
        .map_err(crate::flows::run_failure)
}

/// Runs the command.
pub fn run(args: Args) -> CmdResult {
    if args.segment_size == 0 || args.segment_size > MAX_SEGMENT_SIZE {
        return Err(input_err(format!(
            "--segment-size: must be 1..={MAX_SEGMENT_SIZE}"
        )));
    }
    let party = Identity::load(&args.key).map_err(|e| input_err(format!("--key: {e}")))?;
    let blob_path = args
        .blob_out
        .clone()
        .unwrap_or_else(|| with_suffix(&args.dataset, ".sealed"));
    let paths = CommitPaths {
        commitment: args
            .commitment_out
            .clone()
            .unwrap_or_else(|| with_suffix(&blob_path, ".commitment.json")),
        data_key: args
            .data_key_out
            .clone()
            .unwrap_or_else(|| with_suffix(&blob_path, ".datakey")),
        tree: args.tree_out.clone(),
        blob: blob_path.clone(),
    };
    crate::exit::distinct_files(&[
        ("DATASET", Some(&args.dataset)),
        ("--key", Some(&args.key)),
        ("--blob-out", Some(&paths.blob)),
        ("--commitment-out", Some(&paths.commitment)),
        ("--data-key-out", Some(&paths.data_key)),
        ("--tree-out", paths.tree.as_deref()),
    ])?;
    let (commitment_path, key_path) = (paths.commitment.clone(), paths.data_key.clone());
    let done = commit_to_files(
        &args.dataset,
        &party,
        &paths,
        args.segment_size,
        "commit+encrypt",
    )?;
    let c = &done.signed.commitment;
    let summary = serde_json::json!({
        "dataset": args.dataset.display().to_string(),
        "merkle_root": format!("{:#x}", c.merkle_root),
        "record_count": c.record_count,
        "schema_hash": format!("{:#x}", c.schema_hash),
        "ciphertext_sha256": format!("{:#x}", c.ciphertext_sha256),
        "ciphertext_len": c.ciphertext_len,
        "commitment_digest": format!("0x{}", hex::encode(c.digest())),
        "columns": done.signed.columns,
        "party": hex::encode(party.public().ed25519),
        "blob": blob_path.display().to_string(),
        "commitment_file": commitment_path.display().to_string(),
        "data_key_file": key_path.display().to_string(),
        "tree_file": args.tree_out.as_ref().map(|p| p.display().to_string()),
    });
    if args.json {
        println!("{summary}");
    } else {
        println!(
            "committed {} ({} records)",
            args.dataset.display(),
            c.record_count
        );
        println!("  merkle root        {:#x}", c.merkle_root);
        println!("  schema hash        {:#x}", c.schema_hash);
        println!(
            "  ciphertext sha256  {:#x} ({} bytes)",
            c.ciphertext_sha256, c.ciphertext_len
        );
        println!("  blob               {}", blob_path.display());
        println!("  signed commitment  {}", commitment_path.display());
        println!(
            "  sealed data key    {} (opens only with {})",
            key_path.display(),
            args.key.display()
        );
        if let Some(t) = &args.tree_out {
            println!("  tree dump          {}", t.display());
        }
    }
    Ok(())
}
