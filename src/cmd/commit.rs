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

use std::fs::File;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

use sealroom_member::datakey::SelfSealedDataKey;
use sealroom_protocol::dataset::{commit_stream, DatasetError, SignedCommitment};
use sealroom_protocol::fsutil::AtomicFile;
use sealroom_protocol::identity::Identity;
use sealroom_protocol::stream::{DataKey, DEFAULT_SEGMENT_SIZE, MAX_SEGMENT_SIZE};
use serde::Serialize;

use crate::exit::{input_err, runtime_err, CmdResult, Failure};

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

/// Paths of the files a commit writes.
pub struct CommitPaths {
    /// Encrypted blob.
    pub blob: PathBuf,
    /// Signed commitment.
    pub commitment: PathBuf,
    /// Self-sealed data key.
    pub data_key: PathBuf,
    /// Tree dump, when wanted.
    pub tree: Option<PathBuf>,
}

/// What a commit produced.
pub struct Committed {
    /// The signed commitment.
    pub signed: SignedCommitment,
}

/// Commits `dataset` for `party`, writing every output atomically (nothing is
/// left behind on failure). Errors name the file or flag.
pub fn commit_to_files(
    dataset: &Path,
    party: &Identity,
    paths: &CommitPaths,
    segment_size: u32,
    label: &str,
) -> Result<Committed, Failure> {
    let file = File::open(dataset).map_err(|e| input_err(format!("{}: {e}", dataset.display())))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let io_out =
        |flag: &str, p: &Path, e: std::io::Error| input_err(format!("{flag} {}: {e}", p.display()));
    let blob =
        AtomicFile::create(&paths.blob, false).map_err(|e| io_out("--blob-out", &paths.blob, e))?;
    let key = DataKey::generate().map_err(runtime_err)?;
    let bar = crate::cmd::progress::bytes_bar(size, label);
    let out = commit_stream(BufReader::new(file), &key, segment_size, blob, |n| {
        bar.set_position(n)
    })
    .map_err(|e| match e {
        DatasetError::Io(e) => runtime_err(format!("{}: {e}", dataset.display())),
        other => input_err(format!("{}: {other}", dataset.display())),
    })?;
    bar.finish_and_clear();

    let signed = SignedCommitment::sign(party, out.commitment.clone(), out.columns.clone());
    let sealed_key =
        SelfSealedDataKey::seal(party, out.commitment.digest(), &key).map_err(runtime_err)?;
    drop(key);

    let mut pending: Vec<(AtomicFile, PathBuf)> = Vec::new();
    let mut stage = |flag: &str, path: &Path, text: String, private: bool| -> Result<(), Failure> {
        let mut f = AtomicFile::create(path, private).map_err(|e| io_out(flag, path, e))?;
        f.write_all(text.as_bytes())
            .map_err(|e| io_out(flag, path, e))?;
        pending.push((f, path.to_path_buf()));
        Ok(())
    };
    stage(
        "--commitment-out",
        &paths.commitment,
        pretty(&signed),
        false,
    )?;
    stage("--data-key-out", &paths.data_key, pretty(&sealed_key), true)?;
    if let Some(t) = &paths.tree {
        stage("--tree-out", t, pretty(&out.tree.dump()), false)?;
    }
    out.blob
        .commit()
        .map_err(|e| io_out("--blob-out", &paths.blob, e))?;
    for (f, path) in pending {
        f.commit()
            .map_err(|e| runtime_err(format!("{}: {e}", path.display())))?;
    }
    Ok(Committed { signed })
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

fn pretty<T: Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default() + "\n"
}
