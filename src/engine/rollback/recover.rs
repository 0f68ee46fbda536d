//! Recovering a run that stopped without an outcome: `resume` continues
//! from the first unfinished step, `abort` returns the service to its
//! original version. Recovery is journaled in the same journal, so it can
//! itself be interrupted and recovered again.

use std::path::Path;

use serde::Serialize;
use tokio::sync::mpsc::UnboundedSender;

use crate::config::ServiceSpec;
use crate::engine::coord::{LockError, ServiceLock};
use crate::engine::event::EngineEvent;
use crate::engine::versions;

use super::cancel::Cancel;
use super::executor::change_version;
use super::journal::{self, Journal, JournalError, Record, RecoveryMode, RunKind};
use super::report::Reporter;
use super::revert::{revert, revert_outcome};
use super::steps::blocking;
use super::{Plan, PlannedStep, RunOutcome, StepKind};

/// Recovery of an unfinished run, as shown before it runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecoveryPlan {
    pub service: String,
    pub mode: RecoveryMode,
    /// The interrupted run, in one line.
    pub summary: String,
    /// The interrupted run's plan.
    pub plan: Plan,
    /// The commit HEAD points at now.
    pub head: String,
    /// Uncommitted paths in the working tree.
    pub dirty: Vec<String>,
    pub steps: Vec<PlannedStep>,
}

/// Reasons a recovery cannot be planned or run. None of them changed anything.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    #[error("no unfinished run of `{service}` to recover")]
    NothingToRecover { service: String },
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Versions(#[from] versions::VersionsError),
    #[error("the working tree of `{service}` has changes rewind did not make: {}", files.join(", "))]
    ForeignChanges { service: String, files: Vec<String> },
}

impl RecoverError {
    /// Returns how to fix the error, when there is a known fix.
    pub fn hint(&self) -> Option<String> {
        match self {
            RecoverError::NothingToRecover { service } => Some(format!(
                "`rewind history --service {service}` lists finished runs"
            )),
            RecoverError::ForeignChanges { .. } => {
                Some("commit, stash or discard those changes, then run recover again".to_owned())
            }
            _ => None,
        }
    }
}

/// Reads the unfinished journal of `spec` and plans its recovery.
pub fn plan_recovery(
    spec: &ServiceSpec,
    state_dir: &Path,
    mode: RecoveryMode,
) -> Result<RecoveryPlan, RecoverError> {
    let nothing = || RecoverError::NothingToRecover {
        service: spec.name.clone(),
    };
    let state = journal::read(state_dir, &spec.name)?.ok_or_else(nothing)?;
    let plan = state.plan().cloned().ok_or_else(nothing)?;
    let head = versions::resolve(&spec.deploy_dir, "HEAD")?;
    let dirty = versions::dirty_files(&spec.deploy_dir)?;

    let done = state.done_steps();
    let step = |step, description: String| PlannedStep { step, description };
    let mut steps = vec![step(
        StepKind::Lock,
        format!("take the lock of `{}`", spec.name),
    )];
    match mode {
        RecoveryMode::Abort => {
            let data = match (state.touched_data(), state.safety_backup()) {
                (true, Some(id)) => format!(", restore the safety backup {id}"),
                _ => String::new(),
            };
            let code = if plan.strategy.changes_code() {
                format!("check out {} ({}) again", plan.from.label, plan.from.short)
            } else {
                format!("keep {} ({})", plan.from.label, plan.from.short)
            };
            steps.push(step(
                StepKind::Revert,
                format!("{code}{data} and run the restart command"),
            ));
        }
        RecoveryMode::Resume => {
            for planned in &plan.steps {
                let skipped = matches!(planned.step, StepKind::Lock | StepKind::CheckClean)
                    || (planned.step == StepKind::SafetyBackup && state.safety_backup().is_some())
                    || (done.contains(&planned.step)
                        && matches!(planned.step, StepKind::Checkout | StepKind::Restart));
                if !skipped {
                    steps.push(planned.clone());
                }
            }
        }
    }

    Ok(RecoveryPlan {
        service: spec.name.clone(),
        mode,
        summary: state.summary(),
        plan,
        head,
        dirty,
        steps,
    })
}

/// Runs a recovery planned by [`plan_recovery`] and reports it like a run.
pub async fn recover(
    recovery: &RecoveryPlan,
    spec: &ServiceSpec,
    state_dir: &Path,
    client: &crate::engine::health::Client,
    events: &UnboundedSender<EngineEvent>,
    cancel: Cancel,
) -> Result<RunOutcome, RecoverError> {
    let plan = &recovery.plan;
    let _lock = ServiceLock::acquire(state_dir, &spec.name)?;
    let state =
        journal::read(state_dir, &spec.name)?.ok_or_else(|| RecoverError::NothingToRecover {
            service: spec.name.clone(),
        })?;
    let (kind, reason) = match state.start() {
        Some(Record::RunStarted { kind, reason, .. }) => (*kind, reason.clone()),
        _ => (RunKind::Rollback, None),
    };

    // Only an interrupted checkout's own files may be overwritten.
    let dir = spec.deploy_dir.clone();
    let (from, to) = (plan.from.commit.clone(), plan.to.commit.clone());
    let foreign = blocking(move || versions::foreign_changes(&dir, &from, &to)).await?;
    if !foreign.is_empty() {
        return Err(RecoverError::ForeignChanges {
            service: spec.name.clone(),
            files: foreign,
        });
    }

    let mut journal = Journal::reopen(state_dir, &spec.name)?;
    journal.append(&Record::RecoveryStarted {
        mode: recovery.mode,
        pid: std::process::id(),
        at: journal::now(),
    })?;
    let mut report = Reporter::new(&spec.name, events, plan.steps.len());
    report.attach(journal);
    tracing::info!(service = %spec.name, mode = ?recovery.mode, "recovery started");

    // The revert restores the safety backup only when the data was touched.
    report.safety_backup = state.safety_backup().map(str::to_owned);
    report.touched_data = state.touched_data();
    let outcome = match recovery.mode {
        RecoveryMode::Abort => {
            let data = report
                .touched_data
                .then(|| report.safety_backup.clone())
                .flatten();
            match revert(plan, spec, state_dir, data.as_deref(), &mut report).await {
                Ok(()) => RunOutcome::Reverted {
                    reason: "aborted by recover".to_owned(),
                },
                Err(revert_error) => RunOutcome::RevertFailed {
                    reason: "aborted by recover".to_owned(),
                    revert_error,
                },
            }
        }
        RecoveryMode::Resume => {
            let mut done = resumable_steps(&state.done_steps(), spec, plan).await?;
            if report.safety_backup.is_some() {
                done.push(StepKind::SafetyBackup);
            }
            let failure =
                change_version(plan, spec, state_dir, client, &mut report, &cancel, &done).await;
            match failure {
                None => RunOutcome::Succeeded,
                Some(reason) => revert_outcome(plan, spec, state_dir, &mut report, reason).await,
            }
        }
    };
    let reason = reason.map_or_else(
        || format!("recover --{}", mode_name(recovery.mode)),
        |reason| format!("{reason} (recover --{})", mode_name(recovery.mode)),
    );
    Ok(report.outcome(state_dir, plan, kind, Some(&reason), outcome))
}

fn mode_name(mode: RecoveryMode) -> &'static str {
    match mode {
        RecoveryMode::Resume => "resume",
        RecoveryMode::Abort => "abort",
    }
}

/// Returns the steps a resume may skip: a checkout that is complete (HEAD
/// at the target, tree clean) and a restart that finished after it.
async fn resumable_steps(
    done: &[StepKind],
    spec: &ServiceSpec,
    plan: &Plan,
) -> Result<Vec<StepKind>, RecoverError> {
    let dir = spec.deploy_dir.clone();
    let (head, dirty) = blocking(move || {
        Ok((
            versions::resolve(&dir, "HEAD")?,
            versions::dirty_files(&dir)?,
        ))
    })
    .await?;
    let checked_out = head == plan.to.commit && dirty.is_empty();

    let mut skip = Vec::new();
    if checked_out {
        skip.push(StepKind::Checkout);
        if done.contains(&StepKind::Restart) {
            skip.push(StepKind::Restart);
        }
    } else if head != plan.from.commit || !dirty.is_empty() {
        // A half-done checkout: put the original back so the checkout
        // step starts from a clean tree.
        let dir = spec.deploy_dir.clone();
        let from = plan.from.commit.clone();
        let branch = spec.branch.clone();
        blocking(move || versions::force_checkout(&dir, &from, branch.as_deref())).await?;
    }
    Ok(skip)
}

#[cfg(test)]
mod tests {
    use tokio::sync::mpsc;

    use super::*;
    use crate::engine::rollback::build_plan;
    use crate::engine::rollback::test_support::{repo, spec};

    /// Leaves a journal as a run killed during its restart would: the
    /// checkout done, the restart started and never finished.
    fn interrupted_run(state: &Path, dir: &Path, target: &str) -> Plan {
        let spec = spec(dir);
        let plan = build_plan(&spec, target).unwrap();
        let start = Record::RunStarted {
            run_id: "killed".into(),
            kind: RunKind::Rollback,
            plan: Box::new(plan.clone()),
            user: "ana".into(),
            host: "box".into(),
            pid: 1,
            reason: Some("pager".into()),
            at: journal::now(),
        };
        let mut journal = Journal::create(state, "orders", &start).unwrap();
        for step in [StepKind::Lock, StepKind::CheckClean, StepKind::Checkout] {
            journal
                .append(&Record::StepStarted {
                    step,
                    at: journal::now(),
                })
                .unwrap();
            journal
                .append(&Record::StepFinished {
                    step,
                    ok: true,
                    detail: String::new(),
                    at: journal::now(),
                })
                .unwrap();
        }
        journal
            .append(&Record::StepStarted {
                step: StepKind::Restart,
                at: journal::now(),
            })
            .unwrap();
        versions::checkout(dir, target, Some("main")).unwrap();
        plan
    }

    fn quiet_spec(dir: &Path) -> ServiceSpec {
        let mut spec = spec(dir);
        spec.restart.command = vec!["true".into()];
        spec
    }

    #[tokio::test]
    async fn abort_returns_to_original_version() {
        let (dir, state) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let ids = repo(dir.path(), &["v1", "v2", "v3"]);
        interrupted_run(state.path(), dir.path(), "v1");
        let spec = quiet_spec(dir.path());
        let recovery = plan_recovery(&spec, state.path(), RecoveryMode::Abort).unwrap();

        assert_eq!(recovery.head, ids[0]);
        assert_eq!(recovery.steps.len(), 2);
        let (events, _receiver) = mpsc::unbounded_channel();
        let client = crate::engine::health::client();
        let outcome = recover(
            &recovery,
            &spec,
            state.path(),
            &client,
            &events,
            Cancel::never(),
        )
        .await
        .unwrap();

        assert_eq!(
            outcome,
            RunOutcome::Reverted {
                reason: "aborted by recover".into()
            }
        );
        assert_eq!(versions::resolve(dir.path(), "HEAD").unwrap(), ids[2]);
        assert!(journal::read(state.path(), "orders").unwrap().is_none());
        let audit = crate::engine::coord::audit::read(state.path(), Some("orders")).unwrap();
        assert_eq!(audit[0].reason.as_deref(), Some("pager (recover --abort)"));
    }

    #[tokio::test]
    async fn resume_skips_finished_checkout() {
        let (dir, state) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        repo(dir.path(), &["v1", "v2"]);
        interrupted_run(state.path(), dir.path(), "v1");
        let spec = quiet_spec(dir.path());
        let recovery = plan_recovery(&spec, state.path(), RecoveryMode::Resume).unwrap();
        let steps: Vec<StepKind> = recovery.steps.iter().map(|s| s.step).collect();

        assert_eq!(
            steps,
            [StepKind::Lock, StepKind::Restart, StepKind::VerifyHealth]
        );
    }

    #[tokio::test]
    async fn foreign_change_blocks_recovery() {
        let (dir, state) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let ids = repo(dir.path(), &["v1", "v2"]);
        interrupted_run(state.path(), dir.path(), "v1");
        std::fs::write(dir.path().join("release.txt"), "hand edit").unwrap();
        let spec = quiet_spec(dir.path());
        let recovery = plan_recovery(&spec, state.path(), RecoveryMode::Abort).unwrap();
        let (events, _receiver) = mpsc::unbounded_channel();
        let client = crate::engine::health::client();
        let error = recover(
            &recovery,
            &spec,
            state.path(),
            &client,
            &events,
            Cancel::never(),
        )
        .await
        .unwrap_err();

        assert!(
            matches!(error, RecoverError::ForeignChanges { .. }),
            "{error}"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("release.txt")).unwrap(),
            "hand edit"
        );
        assert_eq!(versions::resolve(dir.path(), "HEAD").unwrap(), ids[0]);
        assert!(journal::read(state.path(), "orders").unwrap().is_some());
    }

    #[test]
    fn nothing_to_recover_without_journal() {
        let (dir, state) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        repo(dir.path(), &["v1", "v2"]);
        let error =
            plan_recovery(&spec(dir.path()), state.path(), RecoveryMode::Resume).unwrap_err();

        assert_eq!(
            error.to_string(),
            "no unfinished run of `orders` to recover"
        );
    }
}
