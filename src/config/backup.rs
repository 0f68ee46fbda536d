//! The checked `[services.NAME.backup]` table: which driver copies a
//! service's data, where that data lives, and how many copies to keep.
//! Parsing and its checks live in `load/backup.rs`.

use std::path::PathBuf;
use std::time::Duration;

/// The `[services.NAME.backup]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupSpec {
    /// The data to copy and the driver that copies it.
    pub source: BackupSource,
    /// Number of newest backups that retention keeps; at least 1.
    pub keep: usize,
    /// Age of the newest backup past which the dashboard warns.
    pub max_age: Option<Duration>,
    /// Time limit for one backup or restore, external tools included.
    pub timeout: Duration,
}

impl BackupSpec {
    /// Returns the driver that copies the data.
    pub fn driver(&self) -> BackupDriver {
        match self.source {
            BackupSource::Sqlite { .. } => BackupDriver::Sqlite,
            BackupSource::Postgres(_) => BackupDriver::Postgres,
            BackupSource::Mysql(_) => BackupDriver::Mysql,
            BackupSource::Directory { .. } => BackupDriver::Directory,
        }
    }
}

/// Location of a service's data, one variant per driver.
#[derive(Debug, Clone, PartialEq)]
pub enum BackupSource {
    /// An SQLite database file, copied with SQLite's online backup API.
    Sqlite { path: PathBuf },
    /// A PostgreSQL database, copied with `pg_dump` and `pg_restore`.
    Postgres(DatabaseSpec),
    /// A MySQL or MariaDB database, copied with `mysqldump` and `mysql`.
    Mysql(DatabaseSpec),
    /// A folder, copied as a zstd-compressed tar archive.
    Directory { path: PathBuf },
}

/// Connection settings of a database server. The URL never contains a
/// password: the password, when one is needed, is read from the
/// environment variable `password_env` at the time of use.
#[derive(Debug, Clone, PartialEq)]
pub struct DatabaseSpec {
    /// `postgres://USER@HOST:PORT/DATABASE` or `mysql://USER@HOST:PORT/DATABASE`.
    pub url: reqwest::Url,
    /// Name of the environment variable that contains the password.
    pub password_env: Option<String>,
}

/// The `driver` key of a backup table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackupDriver {
    Sqlite,
    Postgres,
    Mysql,
    Directory,
}

impl BackupDriver {
    /// Every driver, in the order the documentation lists them.
    pub const ALL: [BackupDriver; 4] = [
        BackupDriver::Sqlite,
        BackupDriver::Postgres,
        BackupDriver::Mysql,
        BackupDriver::Directory,
    ];

    /// Returns the name used in `services.toml` and in manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            BackupDriver::Sqlite => "sqlite",
            BackupDriver::Postgres => "postgres",
            BackupDriver::Mysql => "mysql",
            BackupDriver::Directory => "directory",
        }
    }
}

impl std::fmt::Display for BackupDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
