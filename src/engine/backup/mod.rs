//! The backup engine: the data half of a rollback. A [`Catalog`] keeps the
//! backups of one service, each a data file plus a [`Manifest`], and takes,
//! checks, restores and prunes them. The drivers copy the data: SQLite
//! through its online backup API, PostgreSQL with `pg_dump`/`pg_restore`,
//! MySQL and MariaDB with `mysqldump`/`mysql`, and folders as tar archives
//! compressed with zstd. This module does not decide when to back up or
//! restore: the rollback executor and the front-ends do.

mod catalog;
mod drivers;
mod durable;
mod error;
mod manifest;
mod pipe;
mod tools;

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;

use std::sync::Arc;

pub use catalog::Catalog;
pub use error::BackupError;
pub use manifest::{BackupId, MANIFEST_FORMAT, Manifest};
pub use pipe::PipeError;

/// Progress of a backup, verification or restore, passed to the caller's
/// callback as it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Bytes of backup data written (backup) or read (verification and
    /// restore) so far, and the total when it is known.
    Bytes { done: u64, total: Option<u64> },
    /// A line an external tool printed on stderr.
    ToolOutput(String),
}

/// A progress callback shared between tasks and threads.
pub type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;
