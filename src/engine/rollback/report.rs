//! Reporting a run: every step start, output line and end goes to the event
//! stream, and starts and ends also go to the journal before the run moves
//! on. The final outcome closes the journal and is appended to the audit log.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use tokio::sync::mpsc::UnboundedSender;

use crate::engine::backup::Progress;
use crate::engine::coord::Holder;
use crate::engine::coord::audit::{self, AuditEntry};
use crate::engine::event::EngineEvent;
use crate::engine::failpoint;

use super::journal::{self, Journal, Record, RunKind};
use super::{Plan, RunOutcome, StepKind};

/// Reports one run's steps on the event stream and in its journal.
pub struct Reporter<'a> {
    pub service: &'a str,
    events: &'a UnboundedSender<EngineEvent>,
    total: usize,
    journal: Option<Journal>,
    run_id: String,
    started: SystemTime,
    /// Id of the safety backup this run took, for the revert and the audit log.
    pub safety_backup: Option<String>,
    /// Id of the backup this run restores, for the audit log.
    pub restored_backup: Option<String>,
    /// True once a data restore started, so a revert must restore the
    /// safety backup.
    pub touched_data: bool,
}

impl<'a> Reporter<'a> {
    pub fn new(service: &'a str, events: &'a UnboundedSender<EngineEvent>, total: usize) -> Self {
        Reporter {
            service,
            events,
            total,
            journal: None,
            run_id: new_run_id(),
            started: SystemTime::now(),
            safety_backup: None,
            restored_backup: None,
            touched_data: false,
        }
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Starts journaling into `journal`.
    pub fn attach(&mut self, journal: Journal) {
        self.journal = Some(journal);
    }

    fn send(&self, event: EngineEvent) {
        // A closed channel means no front end listens, and the run continues.
        let _ = self.events.send(event);
    }

    /// Appends a record to the journal. A journal that cannot be written
    /// is reported, but the step already under way finishes.
    pub fn record(&mut self, record: &Record) {
        let Some(journal) = self.journal.as_mut() else {
            return;
        };
        if let Err(error) = journal.append(record) {
            tracing::error!(service = self.service, %error, "journal write failed");
            let line = format!("warning: {error}: recovery after a crash may not find this run");
            self.output(line);
        }
    }

    pub fn started(&mut self, step: StepKind, index: usize) {
        if step == StepKind::RestoreData {
            self.touched_data = true;
        }
        tracing::info!(service = self.service, step = step.as_str(), "step started");
        self.record(&Record::StepStarted {
            step,
            at: journal::now(),
        });
        failpoint::hit(&format!("step-started-{}", step_name(step)));
        self.send(EngineEvent::StepStarted {
            service: self.service.to_owned(),
            step,
            index,
            total: self.total,
        });
    }

    /// Returns a callback that turns backup progress into output lines:
    /// tool output as it comes, copied bytes every 16 MiB.
    pub fn progress(&self) -> impl Fn(Progress) + Send + Sync + 'static {
        const EVERY: u64 = 16 << 20;
        let events = self.events.clone();
        let service = self.service.to_owned();
        let reported = AtomicU64::new(0);
        move |progress| {
            let line = match progress {
                Progress::ToolOutput(line) => line,
                Progress::Bytes { done, .. } => {
                    let step = done / EVERY;
                    if step == 0 || reported.swap(step, Ordering::Relaxed) == step {
                        return;
                    }
                    format!("{} MiB copied", done >> 20)
                }
            };
            let _ = events.send(EngineEvent::StepOutput {
                service: service.clone(),
                line,
            });
        }
    }

    pub fn output(&self, line: String) {
        failpoint::hit("step-output");
        self.send(EngineEvent::StepOutput {
            service: self.service.to_owned(),
            line,
        });
    }

    /// Reports the end of `step` and passes its result on.
    pub fn finished(
        &mut self,
        step: StepKind,
        result: Result<String, String>,
    ) -> Result<(), String> {
        let ok = result.is_ok();
        let detail = match &result {
            Ok(detail) | Err(detail) => detail.clone(),
        };
        if ok {
            tracing::info!(service = self.service, step = step.as_str(), %detail, "step done");
        } else {
            tracing::warn!(service = self.service, step = step.as_str(), %detail, "step failed");
        }
        self.record(&Record::StepFinished {
            step,
            ok,
            detail: detail.clone(),
            at: journal::now(),
        });
        failpoint::hit(&format!("step-finished-{}", step_name(step)));
        self.send(EngineEvent::StepFinished {
            service: self.service.to_owned(),
            step,
            ok,
            detail,
        });
        result.map(|_| ())
    }

    /// Closes the journal, appends the run to the audit log and sends the
    /// outcome.
    pub fn outcome(
        mut self,
        state_dir: &Path,
        plan: &Plan,
        kind: RunKind,
        reason: Option<&str>,
        outcome: RunOutcome,
    ) -> RunOutcome {
        tracing::info!(service = self.service, ?outcome, "run finished");
        failpoint::hit("before-outcome");
        if let Some(journal) = self.journal.take()
            && let Err(error) = journal.finish(&outcome)
        {
            tracing::error!(service = self.service, %error, "cannot close the journal");
            self.output(format!("warning: {error}"));
        }

        let holder = Holder::current();
        let finished = SystemTime::now();
        let entry = AuditEntry {
            run_id: self.run_id.clone(),
            service: self.service.to_owned(),
            kind,
            user: holder.user,
            host: holder.host,
            reason: reason.map(str::to_owned),
            from: plan.from.clone(),
            to: plan.to.clone(),
            outcome: outcome.clone(),
            started_at: humantime::format_rfc3339_millis(self.started).to_string(),
            finished_at: humantime::format_rfc3339_millis(finished).to_string(),
            duration_ms: finished
                .duration_since(self.started)
                .unwrap_or_default()
                .as_millis() as u64,
            backups: self
                .safety_backup
                .iter()
                .chain(&self.restored_backup)
                .cloned()
                .collect(),
            safety_backup: self.safety_backup.clone(),
        };
        if let Err(error) = audit::append(state_dir, &entry) {
            tracing::error!(service = self.service, %error, "cannot append to the audit log");
            self.output(format!("warning: {error}"));
        }

        self.send(EngineEvent::RunFinished {
            service: self.service.to_owned(),
            outcome: outcome.clone(),
        });
        outcome
    }
}

/// Returns a run id: the start time and the process id, unique per host.
pub(crate) fn new_run_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("{nanos:x}-{}", std::process::id())
}

/// Returns the name of `step` as it appears in JSON and failpoint names.
fn step_name(step: StepKind) -> String {
    serde_json::to_value(step)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default()
}
