//! Content-addressed storage of ciphertext blobs and sealed models.
//!
//! The coordinator only ever stores ciphertext; it addresses blobs by their
//! SHA-256 so that an upload can be checked against the manifest's commitment
//! before it becomes visible, and so that a retried upload is a no-op. The
//! [`BlobStore`] trait keeps the directory store replaceable by object
//! storage.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;

use tokio::io::AsyncRead;

/// A blob being written; nothing is visible until [`BlobWriter::commit`].
pub trait BlobWriter: Write + Send {
    /// Makes the written bytes durable and visible under `sha256`.
    fn commit(self: Box<Self>, sha256: &[u8; 32]) -> io::Result<()>;
}

/// A streaming reader of a stored blob.
pub type BlobReader = Pin<Box<dyn AsyncRead + Send>>;

/// Where blobs live.
pub trait BlobStore: Send + Sync {
    /// Starts a new upload.
    fn begin(&self) -> io::Result<Box<dyn BlobWriter>>;
    /// Opens a stored blob; `None` when absent.
    fn open(&self, sha256: &[u8; 32]) -> io::Result<Option<(BlobReader, u64)>>;
    /// Whether a blob is stored.
    fn contains(&self, sha256: &[u8; 32]) -> bool;
}

/// Blobs as files `DIR/<sha256 hex>`, written to `DIR/tmp/` first, fsynced
/// and renamed, so a crash never leaves a partial blob under its final name.
#[derive(Debug)]
pub struct DirBlobStore {
    dir: PathBuf,
}

impl DirBlobStore {
    /// Opens (creating) the store in `dir` and removes leftovers of uploads
    /// interrupted by a crash.
    pub fn open(dir: impl AsRef<Path>) -> io::Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let tmp = dir.join("tmp");
        if tmp.exists() {
            fs::remove_dir_all(&tmp)?;
        }
        fs::create_dir_all(&tmp)?;
        Ok(Self { dir })
    }

    fn path(&self, sha256: &[u8; 32]) -> PathBuf {
        self.dir.join(hex::encode(sha256))
    }
}

struct DirWriter {
    file: Option<tempfile::NamedTempFile>,
    dir: PathBuf,
}

impl Write for DirWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.file {
            Some(f) => f.write(buf),
            None => Err(io::Error::other("blob writer already committed")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.file {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl BlobWriter for DirWriter {
    fn commit(mut self: Box<Self>, sha256: &[u8; 32]) -> io::Result<()> {
        let file = self
            .file
            .take()
            .ok_or_else(|| io::Error::other("blob writer already committed"))?;
        file.as_file().sync_all()?;
        let dest = self.dir.join(hex::encode(sha256));
        if dest.exists() {
            // Same content already stored (content addressing): drop ours.
            return Ok(());
        }
        file.persist(&dest).map_err(|e| e.error)?;
        File::open(&self.dir)?.sync_all()
    }
}

impl BlobStore for DirBlobStore {
    fn begin(&self) -> io::Result<Box<dyn BlobWriter>> {
        let file = tempfile::NamedTempFile::new_in(self.dir.join("tmp"))?;
        Ok(Box::new(DirWriter {
            file: Some(file),
            dir: self.dir.clone(),
        }))
    }

    fn open(&self, sha256: &[u8; 32]) -> io::Result<Option<(BlobReader, u64)>> {
        match File::open(self.path(sha256)) {
            Ok(f) => {
                let len = f.metadata()?.len();
                Ok(Some((Box::pin(tokio::fs::File::from_std(f)), len)))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn contains(&self, sha256: &[u8; 32]) -> bool {
        self.path(sha256).is_file()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn write_commit_read_and_no_partial_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirBlobStore::open(dir.path().join("blobs")).unwrap();
        let data = b"ciphertext bytes".to_vec();
        let sha: [u8; 32] = Sha256::digest(&data).into();
        assert!(!store.contains(&sha));
        let mut w = store.begin().unwrap();
        w.write_all(&data).unwrap();
        w.commit(&sha).unwrap();
        assert!(store.contains(&sha));
        let (mut r, len) = store.open(&sha).unwrap().unwrap();
        assert_eq!(len, data.len() as u64);
        let mut back = Vec::new();
        r.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, data);
        // An upload dropped before commit leaves nothing visible, and the
        // temp directory is cleaned on reopen.
        let mut w = store.begin().unwrap();
        w.write_all(b"partial").unwrap();
        drop(w);
        let store = DirBlobStore::open(dir.path().join("blobs")).unwrap();
        assert_eq!(
            fs::read_dir(dir.path().join("blobs/tmp")).unwrap().count(),
            0
        );
        assert!(store.open(&[0; 32]).unwrap().is_none());
    }
}
