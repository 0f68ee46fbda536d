//! The four ways of copying a service's data: each driver dumps the data
//! into a staged catalog file, checks that a backup can be read back, and
//! restores one. The catalog does the bookkeeping around them: ids,
//! hashes checked before a restore, manifests and retention.

mod directory;
mod mysql;
mod postgres;
mod sqlite;

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::durable::{Digest, Staged};
use super::manifest::Manifest;
use super::tools::{SecretLookup, ToolFinder};
use super::{BackupError, ProgressFn};
use crate::config::BackupSource;

/// Settings and services a driver uses besides the data source.
pub(crate) struct DriverContext {
    /// The catalog folder, private to rewind, for temporary and password
    /// files.
    pub(crate) dir: PathBuf,
    pub(crate) tools: ToolFinder,
    pub(crate) secrets: SecretLookup,
    pub(crate) progress: ProgressFn,
    /// Time limit for the whole dump or restore.
    pub(crate) timeout: Duration,
}

/// The result of a dump, recorded in the manifest.
pub(crate) struct DumpInfo {
    pub(crate) digest: Digest,
    pub(crate) tool_version: Option<String>,
    pub(crate) server_version: Option<String>,
}

/// Copies the data of `source` into `staged`.
pub(crate) async fn dump(
    context: &DriverContext,
    source: &BackupSource,
    staged: &Staged,
) -> Result<DumpInfo, BackupError> {
    match source {
        BackupSource::Sqlite { path } => sqlite::dump(context, path, staged).await,
        BackupSource::Postgres(database) => postgres::dump(context, database, staged).await,
        BackupSource::Mysql(database) => mysql::dump(context, database, staged).await,
        BackupSource::Directory { path } => directory::dump(context, path, staged).await,
    }
}

/// Checks that the tools can read the backup at `data` and restore it
/// into `source`, without changing anything.
pub(crate) async fn check(
    context: &DriverContext,
    source: &BackupSource,
    manifest: &Manifest,
    data: &Path,
) -> Result<(), BackupError> {
    match source {
        BackupSource::Sqlite { .. } => sqlite::check(manifest, data).await,
        BackupSource::Postgres(_) => postgres::check(context, manifest, data).await,
        BackupSource::Mysql(database) => mysql::check(context, database, manifest, data).await,
        BackupSource::Directory { .. } => directory::check(manifest, data).await,
    }
}

/// Replaces the data of `source` with the backup at `data`.
pub(crate) async fn restore(
    context: &DriverContext,
    source: &BackupSource,
    manifest: &Manifest,
    data: &Path,
) -> Result<(), BackupError> {
    match source {
        BackupSource::Sqlite { path } => sqlite::restore(context, data, path).await,
        BackupSource::Postgres(database) => postgres::restore(context, database, data).await,
        BackupSource::Mysql(database) => mysql::restore(context, database, data).await,
        BackupSource::Directory { path } => directory::restore(context, manifest, data, path).await,
    }
}

/// Runs blocking work on tokio's blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, BackupError> + Send + 'static,
) -> Result<T, BackupError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|source| BackupError::Task { source })?
}
