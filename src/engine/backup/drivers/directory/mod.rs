//! The `directory` driver: a folder copied as a tar archive compressed
//! with zstd. A restore extracts into a fresh sibling folder, then swaps
//! it with the live folder in one `renameat2(RENAME_EXCHANGE)` call and
//! removes the old contents only after the swap. Archive entries are
//! checked before anything is written: no entry may reach outside the
//! target through `..`, an absolute path, or a symbolic link.

mod entry;
mod extract;

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::Path;

use tar::{Archive, Builder, Header, HeaderMode};

use super::{DriverContext, DumpInfo, blocking};
use crate::engine::backup::durable::{
    Digest, HashingReader, HashingWriter, Staged, hash_file, sync_dir,
};
use crate::engine::backup::manifest::Manifest;
use crate::engine::backup::{BackupError, ProgressFn};
use entry::{plan_entry, resolve_link};
use extract::{extract, swap};

/// zstd level: the library default, fast with a fair ratio.
const ZSTD_LEVEL: i32 = 3;

pub(super) async fn dump(
    context: &DriverContext,
    folder: &Path,
    staged: &Staged,
) -> Result<DumpInfo, BackupError> {
    let folder = folder.to_path_buf();
    let file = staged.reopen()?;
    let staged_path = staged.path().to_path_buf();
    let progress = context.progress.clone();
    blocking(move || {
        if !folder.is_dir() {
            return Err(BackupError::SourceMissing { path: folder });
        }
        let write_error = |source| BackupError::io("write backup data to", &staged_path, source);
        let mut encoder = zstd::Encoder::new(HashingWriter::new(file, Some(progress)), ZSTD_LEVEL)
            .map_err(write_error)?;
        encoder.include_checksum(true).map_err(write_error)?;
        let mut builder = Builder::new(encoder);

        let root = fs::symlink_metadata(&folder)
            .map_err(|source| BackupError::io("read", &folder, source))?;
        append_entry(&mut builder, &folder, Path::new("."), &root)?;
        append_folder(&mut builder, &folder, Path::new(""))?;

        let encoder = builder.into_inner().map_err(write_error)?;
        let (_, digest) = encoder
            .finish()
            .and_then(HashingWriter::finish)
            .map_err(write_error)?;
        Ok(DumpInfo {
            digest,
            tool_version: Some(format!("zstd {}", zstd::zstd_safe::version_string())),
            server_version: None,
        })
    })
    .await
}

/// Appends the contents of `root/relative`, sorted by name.
fn append_folder<W: Write>(
    builder: &mut Builder<W>,
    root: &Path,
    relative: &Path,
) -> Result<(), BackupError> {
    let folder = root.join(relative);
    let mut entries: Vec<_> = fs::read_dir(&folder)
        .and_then(|entries| entries.collect::<io::Result<Vec<_>>>())
        .map_err(|source| BackupError::io("read folder", &folder, source))?;
    entries.sort_by_key(|entry| entry.file_name());

    for entry in entries {
        let path = entry.path();
        let name = relative.join(entry.file_name());
        let metadata =
            fs::symlink_metadata(&path).map_err(|source| BackupError::io("read", &path, source))?;
        let kind = metadata.file_type();
        if kind.is_dir() {
            append_entry(builder, &path, &name, &metadata)?;
            append_folder(builder, root, &name)?;
        } else if kind.is_file() || kind.is_symlink() {
            append_entry(builder, &path, &name, &metadata)?;
        } else if std::os::unix::fs::FileTypeExt::is_socket(&kind) {
            // A socket only exists while its server runs, which recreates it.
            tracing::warn!(path = %path.display(), "skipping a socket in a directory backup");
        } else {
            return Err(BackupError::UnsupportedFile {
                path,
                reason: "not a file, folder or symbolic link".to_owned(),
            });
        }
    }
    Ok(())
}

fn append_entry<W: Write>(
    builder: &mut Builder<W>,
    path: &Path,
    name: &Path,
    metadata: &fs::Metadata,
) -> Result<(), BackupError> {
    let mut header = Header::new_gnu();
    header.set_metadata_in_mode(metadata, HeaderMode::Complete);
    let write_error = |source| BackupError::io("archive", path, source);
    if metadata.is_dir() {
        header.set_size(0);
        builder
            .append_data(&mut header, name, io::empty())
            .map_err(write_error)
    } else if metadata.file_type().is_symlink() {
        let target = fs::read_link(path).map_err(write_error)?;
        if resolve_link(name, &target).is_none() {
            return Err(BackupError::UnsupportedFile {
                path: path.to_path_buf(),
                reason: format!(
                    "symbolic link to `{}` points outside the folder",
                    target.display()
                ),
            });
        }
        builder
            .append_link(&mut header, name, &target)
            .map_err(write_error)
    } else {
        let file = File::open(path).map_err(write_error)?;
        // The header records the size read now; a file that shrinks while
        // it is read fails the backup instead of storing a short copy.
        builder
            .append_data(&mut header, name, file.take(metadata.len()))
            .map_err(write_error)
    }
}

/// Reads every entry of the archive and checks its path, without writing.
pub(super) async fn check(manifest: &Manifest, data: &Path) -> Result<(), BackupError> {
    let data = data.to_path_buf();
    let id = manifest.id.to_string();
    blocking(move || {
        let mut archive = open_archive(&data, None)?;
        let unreadable = |error: io::Error| BackupError::Unreadable {
            id: id.clone(),
            tool: "tar",
            detail: error.to_string(),
        };
        let mut links = HashSet::new();
        for entry in archive.entries().map_err(unreadable)? {
            let mut entry = entry.map_err(unreadable)?;
            plan_entry(&entry, &mut links)?;
            io::copy(&mut entry, &mut io::sink()).map_err(unreadable)?;
        }
        Ok(())
    })
    .await
}

/// Extracts the backup into a staging folder beside `live` and swaps it in.
/// The archive is hashed as it is extracted, and a size or hash that
/// differs from `manifest` leaves the live folder as it was.
pub(super) async fn restore(
    context: &DriverContext,
    manifest: &Manifest,
    data: &Path,
    live: &Path,
) -> Result<(), BackupError> {
    let data = data.to_path_buf();
    let live = live.to_path_buf();
    let manifest = manifest.clone();
    let progress = context.progress.clone();
    blocking(move || {
        let name = live
            .file_name()
            .ok_or_else(|| BackupError::SourceMissing { path: live.clone() })?;
        let parent = live.parent().unwrap_or(Path::new("/")).to_path_buf();
        if !parent.is_dir() {
            return Err(BackupError::SourceMissing { path: parent });
        }
        let staging = tempfile::Builder::new()
            .prefix(&format!(".{}.rewind-restore-", name.to_string_lossy()))
            .tempdir_in(&parent)
            .map_err(|source| BackupError::io("create a folder in", &parent, source))?;
        let digest = match extract(&data, staging.path(), progress) {
            Ok(digest) => digest,
            // A damaged archive usually fails to decompress before its end:
            // report the damage rather than the decoder's error.
            Err(error) => match hash_file(&data, None) {
                Ok(digest) if digest.hash != manifest.hash => digest,
                _ => return Err(error),
            },
        };
        check_digest(&manifest, &data, &digest)?;
        swap(staging, &live)?;
        sync_dir(&parent)
    })
    .await
}

/// Compares the size and hash of the archive as read with `manifest`.
fn check_digest(manifest: &Manifest, data: &Path, digest: &Digest) -> Result<(), BackupError> {
    if digest.size != manifest.size {
        return Err(BackupError::SizeMismatch {
            id: manifest.id.to_string(),
            path: data.to_path_buf(),
            expected: manifest.size,
            actual: digest.size,
        });
    }
    if digest.hash != manifest.hash {
        return Err(BackupError::HashMismatch {
            id: manifest.id.to_string(),
            expected: manifest.hash.clone(),
            actual: digest.hash.clone(),
        });
    }
    Ok(())
}

/// An archive read from a compressed backup file.
type ArchiveReader = Archive<zstd::Decoder<'static, io::BufReader<HashingReader<File>>>>;

/// Opens the backup at `data`, reporting the bytes read to `progress`.
fn open_archive(data: &Path, progress: Option<ProgressFn>) -> Result<ArchiveReader, BackupError> {
    let file = File::open(data).map_err(|source| BackupError::io("open", data, source))?;
    let total = file.metadata().map(|metadata| metadata.len()).ok();
    let reader = HashingReader::new(file, total, progress);
    let decoder =
        zstd::Decoder::new(reader).map_err(|source| BackupError::io("read", data, source))?;
    Ok(Archive::new(decoder))
}
