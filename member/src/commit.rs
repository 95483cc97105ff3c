//! Committing a dataset to files: one streaming pass (OpenZeppelin Merkle
//! tree, STREAM encryption, ciphertext hash), then the signed commitment and
//! the data key sealed to the member itself — all written atomically, so a
//! failure leaves nothing behind. `sealroom commit` and `sealroom run` use it.

use std::fs::File;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

use sealroom_protocol::dataset::{
    commit_stream_dump, commit_stream_root, DatasetError, SignedCommitment,
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

/// The path `p` resolves to: itself when it exists, else its directory
/// resolved and its name (an output not written yet).
fn resolved(p: &Path) -> PathBuf {
    if let Ok(c) = std::fs::canonicalize(p) {
        return c;
    }
    let dir = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    match (std::fs::canonicalize(dir), p.file_name()) {
        (Ok(d), Some(name)) => d.join(name),
        _ => p.to_path_buf(),
    }
}

/// Refuses files of which two are one (after `.`/`..`, symlinks and the
/// working directory are resolved): each pairs a label — a flag, or what
/// the file is — with its path. An output written over an input, or over
/// another output, would destroy it (a dataset replaced by its own
/// ciphertext, an identity by a tree dump, a blob by its commitment).
pub fn refuse_same_files(named: &[(&str, &Path)]) -> Result<(), String> {
    let paths: Vec<PathBuf> = named.iter().map(|(_, p)| resolved(p)).collect();
    for (i, (label, path)) in named.iter().enumerate() {
        for (j, (other, _)) in named.iter().enumerate().skip(i + 1) {
            if paths[i] == paths[j] {
                return Err(format!(
                    "{label} and {other} name the same file ({}): each needs its own",
                    path.display()
                ));
            }
        }
    }
    Ok(())
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
    let mut named = vec![
        ("the dataset", dataset),
        ("the blob", paths.blob.as_path()),
        ("the signed commitment", paths.commitment.as_path()),
        ("the sealed data key", paths.data_key.as_path()),
    ];
    if let Some(t) = &paths.tree {
        named.push(("the tree dump", t.as_path()));
    }
    refuse_same_files(&named).map_err(|detail| CommitError::Output {
        file: paths.blob.clone(),
        detail,
    })?;
    let file = File::open(dataset).map_err(|e| dataset_err(e.to_string()))?;
    // Every output is opened before the pass, so a path that cannot be
    // written is reported before minutes of hashing, not after.
    let blob = AtomicFile::create(&paths.blob, false).map_err(|e| out_err(&paths.blob, e))?;
    let mut commitment_file =
        AtomicFile::create(&paths.commitment, false).map_err(|e| out_err(&paths.commitment, e))?;
    let mut key_file =
        AtomicFile::create(&paths.data_key, true).map_err(|e| out_err(&paths.data_key, e))?;
    let mut tree_file = match &paths.tree {
        Some(t) => Some((AtomicFile::create(t, false).map_err(|e| out_err(t, e))?, t)),
        None => None,
    };
    let key = DataKey::generate().map_err(|e| CommitError::Internal(e.to_string()))?;
    let read_err = |e| match e {
        DatasetError::Io(e) => dataset_err(e.to_string()),
        other => dataset_err(other.to_string()),
    };
    // Both ways run in bounded memory: the tree, when its dump is wanted,
    // is held in temporary files and its dump streamed; otherwise only the
    // root is computed (the same commitment).
    let (commitment, columns, tree, blob) = if paths.tree.is_some() {
        let o = commit_stream_dump(BufReader::new(file), &key, segment_size, blob, progress)
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

    commitment_file
        .write_all(pretty(&signed).as_bytes())
        .map_err(|e| out_err(&paths.commitment, e))?;
    key_file
        .write_all(pretty(&sealed_key).as_bytes())
        .map_err(|e| out_err(&paths.data_key, e))?;
    if let (Some((f, t)), Some(tree)) = (&mut tree_file, tree) {
        let mut w = std::io::BufWriter::with_capacity(1 << 16, f);
        tree.write_dump(&mut w).map_err(|e| out_err(t, e))?;
    }
    blob.commit().map_err(|e| out_err(&paths.blob, e))?;
    commitment_file
        .commit()
        .map_err(|e| out_err(&paths.commitment, e))?;
    key_file.commit().map_err(|e| out_err(&paths.data_key, e))?;
    if let Some((f, t)) = tree_file {
        f.commit().map_err(|e| out_err(t, e))?;
    }
    Ok(Committed { signed })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_file_under_two_names_is_refused_and_distinct_files_pass() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("sub")).unwrap();
        std::fs::write(d.join("data.csv"), "a\n1\n").unwrap();
        let data = d.join("data.csv");
        let via_dots = d.join("sub/../data.csv");
        let new_out = d.join("out.sealed");
        let new_out_again = d.join("sub/../out.sealed");
        let e = refuse_same_files(&[("the dataset", &data), ("the blob", &via_dots)]).unwrap_err();
        assert!(e.contains("the dataset and the blob"), "{e}");
        // Neither exists yet: still one file.
        assert!(refuse_same_files(&[("a", &new_out), ("b", &new_out_again)]).is_err());
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&data, d.join("link.csv")).unwrap();
            assert!(refuse_same_files(&[("x", &data), ("y", &d.join("link.csv"))]).is_err());
        }
        refuse_same_files(&[
            ("the dataset", &data),
            ("the blob", &new_out),
            ("the dump", &d.join("sub/out.sealed")),
        ])
        .unwrap();
    }
}
