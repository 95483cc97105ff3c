//! Committing a dataset to files: one streaming pass (OpenZeppelin Merkle
//! tree, STREAM encryption, ciphertext hash), then the signed commitment and
//! the data key sealed to the member itself — all written atomically, so a
//! failure leaves nothing behind. `sealroom commit` and `sealroom run` use it.

use std::fs::File;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

use sealroom_protocol::dataset::{
    commit_stream, commit_stream_root, DatasetError, SignedCommitment,
};
use sealroom_protocol::fsutil::AtomicFile;
use sealroom_protocol::identity::Identity;
use sealroom_protocol::stream::DataKey;
use serde::Serialize;

use crate::datakey::SelfSealedDataKey;

/// Paths of the files a commit writes.
#[derive(Clone, Debug)]
pub struct CommitPaths {
    /// Encrypted blob.
    pub blob: PathBuf,
    /// Signed commitment.
    pub commitment: PathBuf,
    /// Self-sealed data key (mode 0600).
    pub data_key: PathBuf,
    /// Tree dump (OpenZeppelin `StandardMerkleTree.dump()`), when wanted.
    pub tree: Option<PathBuf>,
}

/// What a commit produced.
#[derive(Clone, Debug)]
pub struct Committed {
    /// The signed commitment.
    pub signed: SignedCommitment,
}

/// Why a commit stopped; each names the file concerned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommitError {
    /// The dataset is unreadable or not a valid CSV for a commitment (bad input).
    #[error("{}: {detail}", file.display())]
    Dataset {
        /// The dataset file.
        file: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// An output could not be written (bad input: the path).
    #[error("{}: {detail}", file.display())]
    Output {
        /// The output file.
        file: PathBuf,
        /// The cause.
        detail: String,
    },
    /// Key generation or sealing failed.
    #[error("{0}")]
    Internal(String),
}

fn pretty<T: Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default() + "\n"
}

/// Commits `dataset` for `party`, writing every output atomically.
/// `progress(bytes_read)` follows the streaming pass.
pub fn commit_to_files(
    dataset: &Path,
    party: &Identity,
    paths: &CommitPaths,
    segment_size: u32,
    progress: &dyn Fn(u64),
) -> Result<Committed, CommitError> {
    let dataset_err = |detail: String| CommitError::Dataset {
        file: dataset.to_path_buf(),
        detail,
    };
    let out_err = |p: &Path, e: std::io::Error| CommitError::Output {
        file: p.to_path_buf(),
        detail: e.to_string(),
    };
    let file = File::open(dataset).map_err(|e| dataset_err(e.to_string()))?;
    let blob = AtomicFile::create(&paths.blob, false).map_err(|e| out_err(&paths.blob, e))?;
    let key = DataKey::generate().map_err(|e| CommitError::Internal(e.to_string()))?;
    let read_err = |e| match e {
        DatasetError::Io(e) => dataset_err(e.to_string()),
        other => dataset_err(other.to_string()),
    };
    // The whole tree only when its dump is wanted; otherwise the root in
    // bounded memory (the same commitment).
    let (commitment, columns, tree, blob) = if paths.tree.is_some() {
        let o = commit_stream(BufReader::new(file), &key, segment_size, blob, progress)
            .map_err(read_err)?;
        (o.commitment, o.columns, Some(o.tree), o.blob)
    } else {
        let o = commit_stream_root(BufReader::new(file), &key, segment_size, blob, progress)
            .map_err(read_err)?;
        (o.commitment, o.columns, None, o.blob)
    };
    let signed = SignedCommitment::sign(party, commitment.clone(), columns);
    let sealed_key = SelfSealedDataKey::seal(party, commitment.digest(), &key)
        .map_err(|e| CommitError::Internal(e.to_string()))?;
    drop(key);

    let mut pending: Vec<(AtomicFile, PathBuf)> = Vec::new();
    let mut stage = |path: &Path, text: String, private: bool| -> Result<(), CommitError> {
        let mut f = AtomicFile::create(path, private).map_err(|e| out_err(path, e))?;
        f.write_all(text.as_bytes()).map_err(|e| out_err(path, e))?;
        pending.push((f, path.to_path_buf()));
        Ok(())
    };
    stage(&paths.commitment, pretty(&signed), false)?;
    stage(&paths.data_key, pretty(&sealed_key), true)?;
    if let (Some(t), Some(tree)) = (&paths.tree, &tree) {
        stage(t, pretty(&tree.dump()), false)?;
    }
    blob.commit().map_err(|e| out_err(&paths.blob, e))?;
    for (f, path) in pending {
        f.commit().map_err(|e| out_err(&path, e))?;
    }
    Ok(Committed { signed })
}
