//! The run journal: one append-only file per service under
//! `STATE_DIR/journal/`, written before each step starts and after it
//! ends, so a run that dies halfway can be found and resumed or aborted.
//!
//! Each record is one line: the JSON of the record, a tab, and the FNV-1a
//! hash of the JSON in hex. Every append is fsynced. A last line without
//! its newline or with a wrong hash is a torn write: it is ignored, and so
//! is anything after it. A finished run's journal is removed once its
//! outcome is recorded; its history lives in the audit log.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Plan, RunOutcome, StepKind};

/// Kind of a run: a rollback or an undo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    Rollback,
    Undo,
    /// A data restore outside a rollback: `rewind restore`. The code and
    /// the process are left as they are.
    Restore,
}

/// Mode of a recovery of an unfinished run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecoveryMode {
    /// Continue from the first unfinished step.
    Resume,
    /// Return to the original version.
    Abort,
}

/// One journal record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum Record {
    RunStarted {
        run_id: String,
        kind: RunKind,
        plan: Box<Plan>,
        user: String,
        host: String,
        pid: u32,
        reason: Option<String>,
        /// RFC 3339, UTC.
        at: String,
    },
    StepStarted {
        step: StepKind,
        at: String,
    },
    StepFinished {
        step: StepKind,
        ok: bool,
        detail: String,
        at: String,
    },
    RecoveryStarted {
        mode: RecoveryMode,
        pid: u32,
        at: String,
    },
    /// A safety backup was taken; a revert restores it.
    SafetyBackupTaken {
        id: String,
        at: String,
    },
    RunFinished {
        outcome: RunOutcome,
        at: String,
    },
}

/// Errors reading or writing a journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot write journal `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("journal `{}` starts without a run record", path.display())]
    NoStart { path: PathBuf },
}

/// The records of a journal as read back, torn tail removed.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalState {
    pub path: PathBuf,
    pub records: Vec<Record>,
    /// True when a torn last record was found and ignored.
    pub torn: bool,
}

impl JournalState {
    /// Returns the run's start record.
    pub fn start(&self) -> Option<&Record> {
        self.records
            .iter()
            .find(|record| matches!(record, Record::RunStarted { .. }))
    }

    /// Returns the run's plan.
    pub fn plan(&self) -> Option<&Plan> {
        match self.start()? {
            Record::RunStarted { plan, .. } => Some(plan),
            _ => None,
        }
    }

    /// Tells whether the run recorded its outcome.
    pub fn finished(&self) -> bool {
        self.records
            .iter()
            .any(|record| matches!(record, Record::RunFinished { .. }))
    }

    /// Returns the steps that finished successfully since the run, or the
    /// newest recovery, started.
    pub fn done_steps(&self) -> Vec<StepKind> {
        let since = self
            .records
            .iter()
            .rposition(|record| matches!(record, Record::RecoveryStarted { .. }))
            .map_or(0, |at| at + 1);
        self.records[since..]
            .iter()
            .filter_map(|record| match record {
                Record::StepFinished { step, ok: true, .. } => Some(*step),
                _ => None,
            })
            .collect()
    }

    /// Returns the id of the safety backup the run took, if it took one.
    pub fn safety_backup(&self) -> Option<&str> {
        self.records.iter().rev().find_map(|record| match record {
            Record::SafetyBackupTaken { id, .. } => Some(id.as_str()),
            _ => None,
        })
    }

    /// Tells whether the run started to restore data, so the live data may
    /// no longer be what the safety backup holds.
    pub fn touched_data(&self) -> bool {
        self.records.iter().any(|record| {
            matches!(
                record,
                Record::StepStarted {
                    step: StepKind::RestoreData,
                    ..
                }
            )
        })
    }

    /// Returns the backups the run needs: its safety backup and the one it
    /// restores. Retention must keep them until the run is over.
    pub fn backup_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .safety_backup()
            .map(str::to_owned)
            .into_iter()
            .collect();
        if let Some(restore) = self.plan().and_then(|plan| plan.restore.as_ref()) {
            ids.push(restore.id.clone());
        }
        ids
    }

    /// Returns the step that started and did not finish, if any.
    pub fn interrupted_step(&self) -> Option<StepKind> {
        let mut open = None;
        for record in &self.records {
            match record {
                Record::StepStarted { step, .. } => open = Some(*step),
                Record::StepFinished { .. } | Record::RecoveryStarted { .. } => open = None,
                _ => {}
            }
        }
        open
    }

    /// Returns a one-line description for warnings and banners.
    pub fn summary(&self) -> String {
        let Some(Record::RunStarted {
            plan,
            user,
            host,
            at,
            ..
        }) = self.start()
        else {
            return format!("unreadable journal `{}`", self.path.display());
        };
        let step = match self.interrupted_step() {
            Some(step) => format!("stopped during {}", step.as_str()),
            None => "stopped between steps".to_owned(),
        };
        format!(
            "unfinished rollback of `{}` {} -> {} by {user}@{host} at {at}, {step}",
            plan.service, plan.from.label, plan.to.label
        )
    }
}

/// An open journal that records are appended to.
#[derive(Debug)]
pub struct Journal {
    file: File,
    path: PathBuf,
}

/// Returns the journal path of `service`.
pub fn path(state_dir: &Path, service: &str) -> PathBuf {
    state_dir.join("journal").join(format!("{service}.journal"))
}

impl Journal {
    /// Creates the journal of a new run with its first record. Fails if a
    /// journal of the service already exists.
    pub fn create(
        state_dir: &Path,
        service: &str,
        first: &Record,
    ) -> Result<Journal, JournalError> {
        let path = path(state_dir, service);
        let io_error = |source| JournalError::Io {
            path: path.clone(),
            source,
        };
        let dir = path.parent().unwrap_or(state_dir);
        std::fs::create_dir_all(dir).map_err(io_error)?;
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(&path)
            .map_err(io_error)?;
        sync_dir(dir).map_err(io_error)?;

        let mut journal = Journal { file, path };
        journal.append(first)?;
        Ok(journal)
    }

    /// Opens an existing journal to append recovery records.
    pub fn reopen(state_dir: &Path, service: &str) -> Result<Journal, JournalError> {
        let path = path(state_dir, service);
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|source| JournalError::Io {
                path: path.clone(),
                source,
            })?;
        Ok(Journal { file, path })
    }

    /// Appends `record` and fsyncs it.
    pub fn append(&mut self, record: &Record) -> Result<(), JournalError> {
        let json = serde_json::to_string(record).expect("journal records serialize");
        let line = format!("{json}\t{:016x}\n", fnv1a(json.as_bytes()));
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.sync_data())
            .map_err(|source| JournalError::Io {
                path: self.path.clone(),
                source,
            })
    }

    /// Records the outcome and removes the journal: the run is over.
    pub fn finish(mut self, outcome: &RunOutcome) -> Result<(), JournalError> {
        self.append(&Record::RunFinished {
            outcome: outcome.clone(),
            at: now(),
        })?;
        remove(&self.path)
    }
}

/// Removes a journal file and fsyncs its folder.
fn remove(path: &Path) -> Result<(), JournalError> {
    let io_error = |source| JournalError::Io {
        path: path.to_path_buf(),
        source,
    };
    std::fs::remove_file(path).map_err(io_error)?;
    if let Some(dir) = path.parent() {
        sync_dir(dir).map_err(io_error)?;
    }
    Ok(())
}

/// Reads the journal of `service`. Returns `None` when there is none, and
/// removes a journal whose run recorded its outcome but was not removed.
pub fn read(state_dir: &Path, service: &str) -> Result<Option<JournalState>, JournalError> {
    let path = path(state_dir, service);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(JournalError::Io { path, source }),
    };
    let (records, torn) = parse(&bytes);
    let state = JournalState {
        path: path.clone(),
        records,
        torn,
    };
    if state.start().is_none() {
        return Err(JournalError::NoStart { path });
    }
    if state.finished() {
        remove(&path)?;
        return Ok(None);
    }
    if torn {
        tracing::warn!(path = %path.display(), "ignored a torn record at the end of the journal");
    }
    Ok(Some(state))
}

/// Parses journal bytes into records, stopping at the first torn record.
fn parse(bytes: &[u8]) -> (Vec<Record>, bool) {
    let mut records = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let Some(end) = rest.iter().position(|&byte| byte == b'\n') else {
            return (records, true);
        };
        let line = &rest[..end];
        rest = &rest[end + 1..];
        match parse_line(line) {
            Some(record) => records.push(record),
            None => return (records, true),
        }
    }
    (records, false)
}

fn parse_line(line: &[u8]) -> Option<Record> {
    let text = std::str::from_utf8(line).ok()?;
    let (json, hash) = text.rsplit_once('\t')?;
    if u64::from_str_radix(hash, 16).ok()? != fnv1a(json.as_bytes()) {
        return None;
    }
    serde_json::from_str(json).ok()
}

/// Hashes with 64-bit FNV-1a: enough to tell a torn or garbled line from a
/// whole one, which is all the journal needs.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Returns the current time as RFC 3339 in UTC, to the millisecond.
pub fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Strategy;
    use crate::engine::rollback::VersionRef;

    fn plan() -> Plan {
        let version = |label: &str| VersionRef {
            commit: format!("{label:0>40}"),
            short: label.into(),
            label: label.into(),
        };
        Plan {
            service: "orders".into(),
            strategy: Strategy::Code,
            from: version("v2"),
            to: version("v1"),
            undone: Vec::new(),
            applied: Vec::new(),
            dirty: Vec::new(),
            steps: Vec::new(),
            restore: None,
        }
    }

    fn started() -> Record {
        Record::RunStarted {
            run_id: "run-1".into(),
            kind: RunKind::Rollback,
            plan: Box::new(plan()),
            user: "ana".into(),
            host: "box".into(),
            pid: 7,
            reason: Some("bad deploy".into()),
            at: now(),
        }
    }

    fn step(step: StepKind, ok: bool) -> Record {
        Record::StepFinished {
            step,
            ok,
            detail: String::new(),
            at: now(),
        }
    }

    #[test]
    fn records_read_back_in_order() {
        let state = tempfile::tempdir().unwrap();
        let mut journal = Journal::create(state.path(), "orders", &started()).unwrap();
        journal
            .append(&Record::StepStarted {
                step: StepKind::Lock,
                at: now(),
            })
            .unwrap();
        journal.append(&step(StepKind::Lock, true)).unwrap();
        journal
            .append(&Record::StepStarted {
                step: StepKind::Checkout,
                at: now(),
            })
            .unwrap();
        let read = read(state.path(), "orders").unwrap().unwrap();

        assert_eq!(read.records.len(), 4);
        assert_eq!(read.records[0], started_without_time(&read.records[0]));
        assert!(!read.torn);
        assert_eq!(read.done_steps(), [StepKind::Lock]);
        assert_eq!(read.interrupted_step(), Some(StepKind::Checkout));
        assert_eq!(read.plan().unwrap().service, "orders");
    }

    /// Returns `record` when it is the run start written by `started`.
    fn started_without_time(record: &Record) -> Record {
        let Record::RunStarted { at, .. } = record else {
            panic!("not a start record: {record:?}");
        };
        let Record::RunStarted {
            run_id,
            kind,
            plan,
            user,
            host,
            pid,
            reason,
            ..
        } = started()
        else {
            unreachable!()
        };
        Record::RunStarted {
            run_id,
            kind,
            plan,
            user,
            host,
            pid,
            reason,
            at: at.clone(),
        }
    }

    #[test]
    fn torn_tail_is_ignored() {
        let state = tempfile::tempdir().unwrap();
        let mut journal = Journal::create(state.path(), "orders", &started()).unwrap();
        journal.append(&step(StepKind::Lock, true)).unwrap();
        drop(journal);
        let file = path(state.path(), "orders");
        let mut bytes = std::fs::read(&file).unwrap();
        bytes.extend_from_slice(b"{\"record\":\"step_fin");
        std::fs::write(&file, &bytes).unwrap();
        let read = read(state.path(), "orders").unwrap().unwrap();

        assert!(read.torn);
        assert_eq!(read.records.len(), 2);
    }

    #[test]
    fn garbled_line_ends_the_journal() {
        let state = tempfile::tempdir().unwrap();
        let mut journal = Journal::create(state.path(), "orders", &started()).unwrap();
        journal.append(&step(StepKind::Lock, true)).unwrap();
        journal.append(&step(StepKind::CheckClean, true)).unwrap();
        drop(journal);
        let file = path(state.path(), "orders");
        let text = std::fs::read_to_string(&file).unwrap();
        let garbled = text.replacen("check_clean", "check_dirty", 1);
        std::fs::write(&file, garbled).unwrap();
        let read = read(state.path(), "orders").unwrap().unwrap();

        assert!(read.torn);
        assert_eq!(read.done_steps(), [StepKind::Lock]);
    }

    #[test]
    fn finish_removes_the_journal() {
        let state = tempfile::tempdir().unwrap();
        let journal = Journal::create(state.path(), "orders", &started()).unwrap();
        journal.finish(&RunOutcome::Succeeded).unwrap();

        assert!(read(state.path(), "orders").unwrap().is_none());
        assert!(!path(state.path(), "orders").exists());
    }

    #[test]
    fn second_create_fails_while_unfinished() {
        let state = tempfile::tempdir().unwrap();
        let _journal = Journal::create(state.path(), "orders", &started()).unwrap();

        assert!(Journal::create(state.path(), "orders", &started()).is_err());
    }

    #[test]
    fn recovery_restarts_the_done_list() {
        let state = tempfile::tempdir().unwrap();
        let mut journal = Journal::create(state.path(), "orders", &started()).unwrap();
        journal.append(&step(StepKind::Checkout, true)).unwrap();
        journal
            .append(&Record::RecoveryStarted {
                mode: RecoveryMode::Abort,
                pid: 8,
                at: now(),
            })
            .unwrap();
        journal.append(&step(StepKind::Revert, true)).unwrap();
        let read = read(state.path(), "orders").unwrap().unwrap();

        assert_eq!(read.done_steps(), [StepKind::Revert]);
    }

    #[test]
    fn summary_names_run_and_step() {
        let state = tempfile::tempdir().unwrap();
        let mut journal = Journal::create(state.path(), "orders", &started()).unwrap();
        journal
            .append(&Record::StepStarted {
                step: StepKind::Restart,
                at: now(),
            })
            .unwrap();
        let summary = read(state.path(), "orders").unwrap().unwrap().summary();

        assert!(
            summary.starts_with("unfinished rollback of `orders` v2 -> v1 by ana@box at "),
            "{summary}"
        );
        assert!(summary.ends_with(", stopped during restart"), "{summary}");
    }
}
