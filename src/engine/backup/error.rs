//! Errors of the backup engine. Each message names the value it is about,
//! and [`BackupError::hint`] returns how to fix it.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::BackupDriver;

use super::pipe::PipeError;

/// An error of taking, checking, restoring or pruning a backup.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("invalid service name `{name}`")]
    InvalidService { name: String },

    #[error("invalid backup id `{id}`")]
    InvalidId { id: String },

    #[error("no backup `{id}` of service `{service}`")]
    NotFound { service: String, id: String },

    #[error("manifest `{}` is damaged: {reason}", path.display())]
    DamagedManifest { path: PathBuf, reason: String },

    #[error("backup `{id}` has no data file: `{}` is missing", path.display())]
    DataMissing { id: String, path: PathBuf },

    #[error(
        "backup `{id}` has the wrong size: `{}` holds {actual} bytes, the manifest records {expected}",
        path.display()
    )]
    SizeMismatch {
        id: String,
        path: PathBuf,
        expected: u64,
        actual: u64,
    },

    #[error(
        "backup `{id}` is damaged: its BLAKE3 hash is `{actual}`, the manifest records `{expected}`"
    )]
    HashMismatch {
        id: String,
        expected: String,
        actual: String,
    },

    #[error(
        "backup `{id}` was taken by the `{backup}` driver, but the service uses `{configured}`"
    )]
    DriverMismatch {
        id: String,
        backup: BackupDriver,
        configured: BackupDriver,
    },

    #[error("`{tool}` is not installed")]
    ToolMissing {
        tool: &'static str,
        package: &'static str,
    },

    #[error("`{tool}` failed{}", stderr_suffix(stderr))]
    ToolFailed {
        tool: &'static str,
        /// The last lines the tool printed on stderr.
        stderr: String,
        #[source]
        source: PipeError,
    },

    #[error("`{tool}` ended without finishing the dump: {reason}")]
    IncompleteDump { tool: &'static str, reason: String },

    #[error(
        "backup `{id}` was made by pg_dump `{backup_version}`, newer than the local \
         pg_restore `{local_version}`"
    )]
    ToolTooOld {
        id: String,
        backup_version: String,
        local_version: String,
    },

    #[error("backup `{id}` cannot be read by `{tool}`: {detail}")]
    Unreadable {
        id: String,
        tool: &'static str,
        detail: String,
    },

    #[error("environment variable `{name}` is not set or not valid UTF-8")]
    PasswordMissing { name: String },

    #[error("`{}` does not exist", path.display())]
    SourceMissing { path: PathBuf },

    #[error("archive entry `{entry}` is unsafe: {reason}")]
    UnsafeEntry { entry: String, reason: &'static str },

    #[error("cannot back up `{}`: {reason}", path.display())]
    UnsupportedFile { path: PathBuf, reason: String },

    #[error("SQLite cannot {action} `{}`", path.display())]
    Sqlite {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },

    #[error("SQLite database `{}` stayed locked for {}", path.display(), humantime::format_duration(*waited))]
    Busy { path: PathBuf, waited: Duration },

    #[error("cannot {action} `{}`", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("a background task of the backup engine failed")]
    Task {
        #[source]
        source: tokio::task::JoinError,
    },
}

impl BackupError {
    /// Builds an [`BackupError::Io`] error.
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        BackupError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// Returns how to fix the error, when there is a known fix.
    pub fn hint(&self) -> Option<String> {
        let hint = match self {
            BackupError::InvalidService { .. } => {
                "service names use letters, digits, `-`, `_` and `.`".to_owned()
            }
            BackupError::InvalidId { .. } => {
                "backup ids look like `20261204T153012Z-3f9a`: run `rewind backups SERVICE` \
                 to list them"
                    .to_owned()
            }
            BackupError::NotFound { service, .. } => {
                format!("run `rewind backups {service}` to list the backups")
            }
            BackupError::DamagedManifest { .. } => {
                "the backup cannot be trusted: take a new backup, then delete this one".to_owned()
            }
            BackupError::DataMissing { .. }
            | BackupError::SizeMismatch { .. }
            | BackupError::HashMismatch { .. } => {
                "the backup is damaged and was not restored: pick another backup".to_owned()
            }
            BackupError::DriverMismatch { .. } => {
                "restore it with the driver that took it, or pick a backup taken since the \
                 driver changed"
                    .to_owned()
            }
            BackupError::ToolMissing { tool, package } => format!(
                "install the Debian package `{package}` (apt-get install {package}) or put \
                 `{tool}` on PATH"
            ),
            BackupError::ToolFailed { source, .. } => match source {
                PipeError::Output { source, .. } if is_disk_full(source) => {
                    "free space on the disk that holds the state folder".to_owned()
                }
                PipeError::Process(process) => process.hint().unwrap_or_else(|| {
                    "read the tool's output above; check the URL, the password and that the \
                     server is running"
                        .to_owned()
                }),
                _ => return None,
            },
            BackupError::IncompleteDump { .. } => {
                "the server may have gone away during the dump: check it and take the backup \
                 again"
                    .to_owned()
            }
            BackupError::ToolTooOld { .. } => {
                "install a PostgreSQL client at least as new as the pg_dump that took the backup"
                    .to_owned()
            }
            BackupError::Unreadable { .. } => {
                "the backup was not restored: check the tool versions, or pick another backup"
                    .to_owned()
            }
            BackupError::PasswordMissing { name } => {
                format!("export `{name}` with the database password before running rewind")
            }
            BackupError::SourceMissing { .. } => {
                "check `path` in the service's `backup` table".to_owned()
            }
            BackupError::UnsafeEntry { .. } => {
                "the archive was not extracted: restore another backup".to_owned()
            }
            BackupError::UnsupportedFile { .. } => {
                "directory backups hold files, folders and symbolic links that stay inside \
                 the folder: move the other entries out"
                    .to_owned()
            }
            BackupError::Sqlite { source, .. }
                if source.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) =>
            {
                "free space on that disk; nothing was replaced".to_owned()
            }
            BackupError::Sqlite { .. } => {
                "check that the path is an SQLite database and that rewind may read and \
                 write it"
                    .to_owned()
            }
            BackupError::Busy { .. } => {
                "another connection holds a lock on the database: retry, or raise `timeout` \
                 in the `backup` table"
                    .to_owned()
            }
            BackupError::Io { source, .. } if is_disk_full(source) => {
                "free space on that disk; nothing was replaced".to_owned()
            }
            BackupError::Io { .. } => "check that the path exists and its permissions".to_owned(),
            BackupError::Task { .. } => return None,
        };
        Some(hint)
    }
}

/// Tells whether `error` means the disk or the file-size limit is full.
pub(crate) fn is_disk_full(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::FileTooLarge | io::ErrorKind::QuotaExceeded
    )
}

fn stderr_suffix(stderr: &str) -> String {
    let last = stderr.lines().rev().find(|line| !line.trim().is_empty());
    match last {
        Some(line) => format!(": {}", line.trim()),
        None => String::new(),
    }
}
