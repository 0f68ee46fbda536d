//! Crash-safe files for the catalog. Data and manifests are written under a
//! temporary name with mode 0600, fsynced, renamed into place, and then the
//! folder is fsynced. So a crash or a full disk never leaves a partial file
//! under a final name. This module also hashes data with BLAKE3 while it
//! streams.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use tempfile::NamedTempFile;

use super::{BackupError, Progress, ProgressFn};

/// Prefix of temporary files in a catalog folder. Retention removes files
/// with this prefix that a crashed run left behind.
pub(crate) const TEMP_PREFIX: &str = ".tmp-";

/// Progress is reported each time this many more bytes have passed.
const PROGRESS_STEP: u64 = 1 << 20;

/// Creates `path` and its missing parents; the last folder gets mode 0700.
pub(crate) fn create_private_dir(path: &Path) -> Result<(), BackupError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|source| BackupError::io("create folder", path, source))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o700))
        .map_err(|source| BackupError::io("set permissions of", path, source))
}

/// Flushes the entries of folder `path` to disk, so renames in it survive
/// a crash.
pub(crate) fn sync_dir(path: &Path) -> Result<(), BackupError> {
    File::open(path)
        .and_then(|dir| dir.sync_all())
        .map_err(|source| BackupError::io("sync folder", path, source))
}

/// A file being written under a temporary name in its final folder. It is
/// removed when dropped unless [`Staged::commit`] moved it into place.
pub(crate) struct Staged {
    file: NamedTempFile,
}

impl Staged {
    /// Creates an empty temporary file with mode 0600 in `dir`.
    pub(crate) fn new_in(dir: &Path) -> Result<Staged, BackupError> {
        let file = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .permissions(fs::Permissions::from_mode(0o600))
            .tempfile_in(dir)
            .map_err(|source| BackupError::io("create a temporary file in", dir, source))?;
        Ok(Staged { file })
    }

    pub(crate) fn path(&self) -> &Path {
        self.file.path()
    }

    /// Returns a second handle on the file, for writers that must own one.
    pub(crate) fn reopen(&self) -> Result<File, BackupError> {
        OpenOptions::new()
            .write(true)
            .open(self.path())
            .map_err(|source| BackupError::io("open", self.path(), source))
    }

    /// Flushes the file to disk, renames it to `target` and flushes the
    /// folder. With `replace` false an existing `target` is an error and is
    /// left untouched.
    pub(crate) fn commit(self, target: &Path, replace: bool) -> Result<(), BackupError> {
        self.file
            .as_file()
            .sync_all()
            .map_err(|source| BackupError::io("sync", self.file.path(), source))?;
        let persisted = if replace {
            self.file.persist(target).map(drop)
        } else {
            self.file.persist_noclobber(target).map(drop)
        };
        persisted
            .map_err(|error| BackupError::io("rename a temporary file to", target, error.error))?;
        if let Some(dir) = target.parent() {
            sync_dir(dir)?;
        }
        Ok(())
    }
}

/// Writes `bytes` to `target` through a [`Staged`] file.
pub(crate) fn write_atomic(target: &Path, bytes: &[u8], replace: bool) -> Result<(), BackupError> {
    let dir = target.parent().unwrap_or(Path::new("."));
    let mut staged = Staged::new_in(dir)?;
    staged
        .file
        .write_all(bytes)
        .map_err(|source| BackupError::io("write", staged.path().to_path_buf(), source))?;
    staged.commit(target, replace)
}

/// Size and BLAKE3 hash of a stream of bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Digest {
    pub(crate) size: u64,
    pub(crate) hash: String,
}

/// Counts and hashes bytes as they pass, and reports progress.
struct Meter {
    hasher: blake3::Hasher,
    bytes: u64,
    next_report: u64,
    total: Option<u64>,
    progress: Option<ProgressFn>,
}

impl Meter {
    fn new(total: Option<u64>, progress: Option<ProgressFn>) -> Meter {
        Meter {
            hasher: blake3::Hasher::new(),
            bytes: 0,
            next_report: PROGRESS_STEP,
            total,
            progress,
        }
    }

    fn pass(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
        self.bytes += bytes.len() as u64;
        if self.bytes >= self.next_report {
            self.next_report = self.bytes + PROGRESS_STEP;
            self.report();
        }
    }

    fn report(&self) {
        if let Some(progress) = &self.progress {
            progress(Progress::Bytes {
                done: self.bytes,
                total: self.total,
            });
        }
    }

    fn finish(self) -> Digest {
        self.report();
        Digest {
            size: self.bytes,
            hash: self.hasher.finalize().to_hex().to_string(),
        }
    }
}

/// A writer that hashes what it writes, so the hash of a backup is known
/// when its last byte is written.
pub(crate) struct HashingWriter<W> {
    inner: W,
    meter: Meter,
}

impl<W: Write> HashingWriter<W> {
    pub(crate) fn new(inner: W, progress: Option<ProgressFn>) -> Self {
        HashingWriter {
            inner,
            meter: Meter::new(None, progress),
        }
    }

    /// Flushes the inner writer and returns it with the digest of all bytes
    /// written.
    pub(crate) fn finish(mut self) -> io::Result<(W, Digest)> {
        self.inner.flush()?;
        Ok((self.inner, self.meter.finish()))
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.meter.pass(&buf[..written]);
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes what it reads.
pub(crate) struct HashingReader<R> {
    inner: R,
    meter: Meter,
}

impl<R: Read> HashingReader<R> {
    pub(crate) fn new(inner: R, total: Option<u64>, progress: Option<ProgressFn>) -> Self {
        HashingReader {
            inner,
            meter: Meter::new(total, progress),
        }
    }

    pub(crate) fn finish(self) -> Digest {
        self.meter.finish()
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.meter.pass(&buf[..read]);
        Ok(read)
    }
}

/// Reads the file at `path` once and returns its digest.
pub(crate) fn hash_file(path: &Path, progress: Option<ProgressFn>) -> io::Result<Digest> {
    let file = File::open(path)?;
    let total = file.metadata()?.len();
    let mut reader = HashingReader::new(file, Some(total), progress);
    io::copy(&mut reader, &mut io::sink())?;
    Ok(reader.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_keeps_existing_target() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a.json");
        write_atomic(&target, b"first", false).unwrap();
        let error = write_atomic(&target, b"second", false).unwrap_err();

        assert!(matches!(error, BackupError::Io { .. }), "{error}");
        assert_eq!(fs::read(&target).unwrap(), b"first");
        write_atomic(&target, b"third", true).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"third");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "a temporary file was left behind");
    }

    #[test]
    fn committed_file_has_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("m.json");
        write_atomic(&target, b"{}", false).unwrap();
        let mode = fs::metadata(&target).unwrap().permissions().mode();

        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn hashing_writer_matches_one_shot_hash() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut writer = HashingWriter::new(Vec::new(), None);
        for chunk in data.chunks(7777) {
            writer.write_all(chunk).unwrap();
        }
        let (written, digest) = writer.finish().unwrap();

        assert_eq!(written, data);
        assert_eq!(digest.size, 3_000_000);
        assert_eq!(digest.hash, blake3::hash(&data).to_hex().to_string());
    }
}
