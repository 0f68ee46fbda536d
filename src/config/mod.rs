//! The `services.toml` schema: the checked settings every engine reads, how
//! the file is found, and its validation. Parsing and the checks live in
//! `load.rs`; this file holds only the checked types.

mod backup;
mod error;
mod load;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use backup::{BackupDriver, BackupSource, BackupSpec, DatabaseSpec};
pub use error::ConfigError;
pub use load::{load, parse};

/// Name of the configuration file looked up in the working folder and in
/// `$XDG_CONFIG_HOME/rewind/`.
pub const FILE_NAME: &str = "services.toml";

/// A checked configuration: every path is absolute and every service passed
/// validation.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file the configuration was read from.
    pub path: PathBuf,
    /// Folder for logs and locks.
    pub state_dir: PathBuf,
    /// When true, nothing that changes a service may run.
    pub read_only: bool,
    /// Services in the order the file declares them.
    pub services: Vec<ServiceSpec>,
}

impl Config {
    /// Returns the service called `name`, if the file declares it.
    pub fn service(&self, name: &str) -> Option<&ServiceSpec> {
        self.services.iter().find(|service| service.name == name)
    }

    /// Returns the service called `name` or an error that lists the known names.
    pub fn require(&self, name: &str) -> Result<&ServiceSpec, ConfigError> {
        self.service(name)
            .ok_or_else(|| ConfigError::UnknownService {
                path: self.path.clone(),
                name: name.to_owned(),
                known: self.services.iter().map(|s| s.name.clone()).collect(),
            })
    }
}

/// One service from a `[services.NAME]` table.
#[derive(Debug, Clone)]
pub struct ServiceSpec {
    pub name: String,
    /// The git working tree the service runs from.
    pub deploy_dir: PathBuf,
    /// Deploy branch whose first-parent history lists the versions. `None`
    /// means the branch checked out, or the branch that contains `HEAD`.
    pub branch: Option<String>,
    pub depends_on: Vec<String>,
    pub health: HealthSpec,
    pub restart: RestartSpec,
    pub rollback: RollbackPolicy,
    /// Backup settings of the service's data, `None` when it has no data
    /// to back up.
    pub backup: Option<BackupSpec>,
}

/// The `[services.NAME.health]` table: an HTTP probe with Kubernetes-style
/// thresholds.
#[derive(Debug, Clone)]
pub struct HealthSpec {
    pub url: reqwest::Url,
    pub interval: Duration,
    pub timeout: Duration,
    /// Status codes that count as success. Empty means any 2xx or 3xx.
    pub expected_status: Vec<u16>,
    pub failure_threshold: u32,
    pub success_threshold: u32,
}

impl HealthSpec {
    /// Tells whether `status` counts as a passing probe.
    pub fn accepts(&self, status: u16) -> bool {
        if self.expected_status.is_empty() {
            (200..400).contains(&status)
        } else {
            self.expected_status.contains(&status)
        }
    }
}

/// The `[services.NAME.restart]` table.
#[derive(Debug, Clone)]
pub struct RestartSpec {
    /// Program and arguments, run without a shell in the deploy directory.
    pub command: Vec<String>,
    pub timeout: Duration,
    /// Environment variables set for the command, on top of rewind's own.
    pub env: BTreeMap<String, String>,
}

/// The `[services.NAME.rollback]` table.
#[derive(Debug, Clone)]
pub struct RollbackPolicy {
    pub strategy: Strategy,
    /// How long a rollback waits for health to pass after the restart.
    pub verify_timeout: Duration,
    /// How long health must stay passing after verification before the
    /// rollback counts as done.
    pub settle: Duration,
}

/// Kind of rollback: the parts of a service it puts back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Strategy {
    /// Check out an earlier commit and restart.
    #[serde(rename = "code")]
    Code,
    /// Restore a backup of the data and restart; the code stays.
    #[serde(rename = "data")]
    Data,
    /// Check out an earlier commit and restore a backup taken while it
    /// was deployed.
    #[serde(rename = "code+data")]
    CodeData,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Code => "code",
            Strategy::Data => "data",
            Strategy::CodeData => "code+data",
        }
    }

    /// Parses the name used in `services.toml` and on the command line.
    pub fn parse(name: &str) -> Option<Strategy> {
        match name {
            "code" => Some(Strategy::Code),
            "data" => Some(Strategy::Data),
            "code+data" => Some(Strategy::CodeData),
            _ => None,
        }
    }

    pub fn changes_code(self) -> bool {
        matches!(self, Strategy::Code | Strategy::CodeData)
    }

    pub fn restores_data(self) -> bool {
        matches!(self, Strategy::Data | Strategy::CodeData)
    }
}

/// Finds the configuration file: `explicit` when given, else
/// `./services.toml`, else `$XDG_CONFIG_HOME/rewind/services.toml`.
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, ConfigError> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    let local = PathBuf::from(FILE_NAME);
    if local.is_file() {
        return Ok(local);
    }
    let mut searched = vec![local];
    if let Some(config_home) = xdg_home("XDG_CONFIG_HOME", ".config") {
        let candidate = config_home.join("rewind").join(FILE_NAME);
        if candidate.is_file() {
            return Ok(candidate);
        }
        searched.push(candidate);
    }
    Err(ConfigError::NotFound { searched })
}

/// Returns `$VAR`, or `$HOME/fallback` when the variable is unset or empty.
pub(crate) fn xdg_home(var: &str, fallback: &str) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(value) if !value.is_empty() => Some(PathBuf::from(value)),
        _ => std::env::var_os("HOME").map(|home| PathBuf::from(home).join(fallback)),
    }
}

#[cfg(test)]
mod tests;
