//! The audit log: one JSON line per finished run (who, why, from and to
//! versions, outcome, time taken) appended to `STATE_DIR/audit.jsonl` and
//! fsynced. Failed, refused and aborted runs are recorded like successes.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::engine::rollback::journal::RunKind;
use crate::engine::rollback::{RunOutcome, VersionRef};

/// Name of the audit log inside the state folder.
pub const FILE_NAME: &str = "audit.jsonl";

/// One finished run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub run_id: String,
    pub service: String,
    pub kind: RunKind,
    pub user: String,
    pub host: String,
    pub reason: Option<String>,
    pub from: VersionRef,
    pub to: VersionRef,
    pub outcome: RunOutcome,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub finished_at: String,
    pub duration_ms: u64,
    /// Ids of backups the run took or used.
    #[serde(default)]
    pub backups: Vec<String>,
    /// The safety backup taken before a data restore; an undo restores it.
    #[serde(default)]
    pub safety_backup: Option<String>,
}

/// Errors of the audit log.
#[derive(Debug, thiserror::Error)]
#[error("cannot use audit log `{}`", path.display())]
pub struct AuditError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

/// Returns the path of the audit log.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE_NAME)
}

/// Appends `entry` to the audit log and fsyncs it.
pub fn append(state_dir: &Path, entry: &AuditEntry) -> Result<(), AuditError> {
    let path = path(state_dir);
    let io_error = |source| AuditError {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(state_dir).map_err(io_error)?;
    let mut line = serde_json::to_string(entry).expect("audit entries serialize");
    line.push('\n');
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        .open(&path)
        .map_err(io_error)?;
    // One write call per line, so concurrent appenders never interleave
    // inside a line.
    file.write_all(line.as_bytes()).map_err(io_error)?;
    file.sync_data().map_err(io_error)
}

/// Reads the audit log, newest first, keeping entries of `service` when it
/// is given. Lines that do not parse (a torn last line) are skipped.
pub fn read(state_dir: &Path, service: Option<&str>) -> Result<Vec<AuditEntry>, AuditError> {
    let path = path(state_dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(AuditError { path, source }),
    };
    let mut entries: Vec<AuditEntry> = text
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .filter(|entry: &AuditEntry| service.is_none_or(|name| entry.service == name))
        .collect();
    entries.reverse();
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(service: &str, run_id: &str) -> AuditEntry {
        let version = |label: &str| VersionRef {
            commit: format!("{label:0>40}"),
            short: label.into(),
            label: label.into(),
        };
        AuditEntry {
            run_id: run_id.into(),
            service: service.into(),
            kind: RunKind::Rollback,
            user: "ana".into(),
            host: "box".into(),
            reason: Some("pager".into()),
            from: version("v2"),
            to: version("v1"),
            outcome: RunOutcome::Reverted {
                reason: "restart failed".into(),
            },
            started_at: "2026-12-04T10:00:00Z".into(),
            finished_at: "2026-12-04T10:00:05Z".into(),
            duration_ms: 5000,
            backups: Vec::new(),
            safety_backup: None,
        }
    }

    #[test]
    fn entries_read_newest_first() {
        let state = tempfile::tempdir().unwrap();
        append(state.path(), &entry("orders", "a")).unwrap();
        append(state.path(), &entry("payments", "b")).unwrap();
        append(state.path(), &entry("orders", "c")).unwrap();
        let all: Vec<String> = read(state.path(), None)
            .unwrap()
            .into_iter()
            .map(|e| e.run_id)
            .collect();
        let orders: Vec<String> = read(state.path(), Some("orders"))
            .unwrap()
            .into_iter()
            .map(|e| e.run_id)
            .collect();

        assert_eq!(all, ["c", "b", "a"]);
        assert_eq!(orders, ["c", "a"]);
    }

    #[test]
    fn torn_line_is_skipped() {
        let state = tempfile::tempdir().unwrap();
        append(state.path(), &entry("orders", "a")).unwrap();
        let mut file = OpenOptions::new()
            .append(true)
            .open(path(state.path()))
            .unwrap();
        file.write_all(b"{\"run_id\":\"b\",\"serv").unwrap();
        let entries = read(state.path(), None).unwrap();

        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].outcome, entry("orders", "a").outcome);
    }

    #[test]
    fn missing_log_reads_empty() {
        let state = tempfile::tempdir().unwrap();

        assert!(read(state.path(), None).unwrap().is_empty());
    }
}
