//! Runs a rollback plan: lock, clean check, checkout, restart, health
//! verification and settle time. Every step is journaled before it starts
//! and after it ends. When the checkout, the restart or the health checks
//! fail, or the run is cancelled, the original version is checked out and
//! restarted again before the run reports failure.

use std::path::Path;

use tokio::sync::mpsc::UnboundedSender;

use crate::config::ServiceSpec;
use crate::engine::coord::{Holder, ServiceLock};
use crate::engine::event::EngineEvent;
use crate::engine::versions;

use super::cancel::Cancel;
use super::journal::{self, Journal, Record, RunKind};
use super::report::Reporter;
use super::revert::revert_outcome;
use super::steps::{blocking, checkout, restart, restore_data, safety_backup, settle, verify};
use super::{Plan, RunOutcome, StepKind};

/// Options of a run: its kind, its reason and its cancel token.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub kind: RunKind,
    pub reason: Option<String>,
    pub cancel: Cancel,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            kind: RunKind::Rollback,
            reason: None,
            cancel: Cancel::never(),
        }
    }
}

/// Runs `plan` on `spec` and reports every step on `events`. The returned
/// outcome is also sent as [`EngineEvent::RunFinished`].
pub async fn execute(
    plan: &Plan,
    spec: &ServiceSpec,
    state_dir: &Path,
    client: &crate::engine::health::Client,
    events: &UnboundedSender<EngineEvent>,
    options: RunOptions,
) -> RunOutcome {
    let mut report = Reporter::new(&spec.name, events, plan.steps.len());
    let reason = options.reason.as_deref();
    let finish =
        |report: Reporter, outcome| report.outcome(state_dir, plan, options.kind, reason, outcome);
    tracing::info!(service = %spec.name, from = %plan.from.label, to = %plan.to.label, "rollback started");

    // Steps before the checkout change nothing, so their failures refuse the run.
    report.started(StepKind::Lock, 0);
    let (lock, journal) = match prepare(plan, spec, state_dir, &options, report.run_id()) {
        Ok(prepared) => prepared,
        Err(reason) => {
            let _ = report.finished(StepKind::Lock, Err(reason.clone()));
            return finish(report, RunOutcome::Refused { reason });
        }
    };
    report.attach(journal);
    report.record(&Record::StepStarted {
        step: StepKind::Lock,
        at: journal::now(),
    });
    let _ = report.finished(StepKind::Lock, Ok("lock taken".to_owned()));

    report.started(StepKind::CheckClean, 1);
    let clean = check_unchanged(plan, spec).await;
    if let Err(reason) = report.finished(StepKind::CheckClean, clean) {
        return finish(report, RunOutcome::Refused { reason });
    }
    if options.cancel.is_cancelled() {
        let reason = "cancelled before any change".to_owned();
        return finish(report, RunOutcome::Refused { reason });
    }

    let failure = change_version(
        plan,
        spec,
        state_dir,
        client,
        &mut report,
        &options.cancel,
        &[],
    )
    .await;
    let outcome = match failure {
        None => RunOutcome::Succeeded,
        Some(reason) => revert_outcome(plan, spec, state_dir, &mut report, reason).await,
    };
    let outcome = finish(report, outcome);
    drop(lock);
    outcome
}

/// Takes the lock and opens the run's journal, or returns why the run cannot start.
fn prepare(
    plan: &Plan,
    spec: &ServiceSpec,
    state_dir: &Path,
    options: &RunOptions,
    run_id: &str,
) -> Result<(ServiceLock, Journal), String> {
    let lock = ServiceLock::acquire(state_dir, &spec.name).map_err(|error| match error.hint() {
        Some(hint) => format!("{error} ({hint})"),
        None => error.to_string(),
    })?;
    match journal::read(state_dir, &spec.name) {
        Ok(None) => {}
        Ok(Some(unfinished)) => {
            return Err(format!(
                "{}; run `rewind recover {} --resume` or `--abort` first",
                unfinished.summary(),
                spec.name
            ));
        }
        Err(error) => return Err(error.to_string()),
    }

    let holder = Holder::current();
    let start = Record::RunStarted {
        run_id: run_id.to_owned(),
        kind: options.kind,
        plan: Box::new(plan.clone()),
        user: holder.user,
        host: holder.host,
        pid: holder.pid,
        reason: options.reason.clone(),
        at: journal::now(),
    };
    let journal =
        Journal::create(state_dir, &spec.name, &start).map_err(|error| error.to_string())?;
    Ok((lock, journal))
}

/// Checks that the tree is clean and still at the plan's from version, so
/// a revert returns to what was really deployed.
async fn check_unchanged(plan: &Plan, spec: &ServiceSpec) -> Result<String, String> {
    let dir = spec.deploy_dir.clone();
    let head = blocking(move || versions::resolve(&dir, "HEAD"))
        .await
        .map_err(|error| error.to_string())?;
    if head != plan.from.commit {
        return Err(format!(
            "`{}` moved from {} to {} since the plan was made; make a new plan",
            spec.name,
            plan.from.short,
            &head[..7.min(head.len())]
        ));
    }

    let dir = spec.deploy_dir.clone();
    let files = blocking(move || versions::dirty_files(&dir))
        .await
        .map_err(|error| error.to_string())?;
    if files.is_empty() {
        Ok("working tree is clean".to_owned())
    } else {
        Err(format!(
            "working tree `{}` has uncommitted changes: {} (commit, stash or discard them, \
             then retry)",
            spec.deploy_dir.display(),
            files.join(", ")
        ))
    }
}

/// Runs the plan's steps after the clean check: safety backup, checkout,
/// data restore, restart, verification and settle time. Steps in `done`
/// are skipped. Returns the reason of the first failure, if any.
pub(super) async fn change_version(
    plan: &Plan,
    spec: &ServiceSpec,
    state_dir: &Path,
    client: &crate::engine::health::Client,
    report: &mut Reporter<'_>,
    cancel: &Cancel,
    done: &[StepKind],
) -> Option<String> {
    for (index, planned) in plan.steps.iter().enumerate() {
        let step = planned.step;
        if matches!(
            step,
            StepKind::Lock | StepKind::CheckClean | StepKind::Revert
        ) || done.contains(&step)
        {
            continue;
        }
        if cancel.is_cancelled() {
            return Some("cancelled by the user".to_owned());
        }

        report.started(step, index);
        let result = match step {
            StepKind::SafetyBackup => safety_backup(spec, state_dir, report).await,
            StepKind::Checkout => checkout(spec, &plan.to.commit)
                .await
                .map(|()| format!("checked out {} ({})", plan.to.label, plan.to.short)),
            StepKind::RestoreData => restore_data(plan, spec, state_dir, report).await,
            StepKind::Restart => restart(spec, report).await,
            StepKind::VerifyHealth => tokio::select! {
                result = verify(spec, client, report) => result,
                () = cancel.cancelled() => Err("cancelled by the user".to_owned()),
            },
            StepKind::Settle => tokio::select! {
                result = settle(spec, client, report) => result,
                () = cancel.cancelled() => Err("cancelled by the user".to_owned()),
            },
            StepKind::Lock | StepKind::CheckClean | StepKind::Revert => continue,
        };
        if let Err(reason) = report.finished(step, result) {
            return Some(reason);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use tokio::sync::mpsc;

    use super::*;
    use crate::engine::rollback::build_plan;
    use crate::engine::rollback::test_support::{repo, spec};

    #[tokio::test]
    async fn run_refuses_when_head_moved_after_plan() {
        let dir = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        let ids = repo(dir.path(), &["v1", "v2", "v3"]);
        let spec = spec(dir.path());
        let plan = build_plan(&spec, "v1").unwrap();
        versions::checkout(dir.path(), "v2", Some("main")).unwrap();

        let (events, _receiver) = mpsc::unbounded_channel();
        let client = crate::engine::health::client();
        let options = RunOptions::default();
        let outcome = execute(&plan, &spec, state.path(), &client, &events, options).await;

        let RunOutcome::Refused { reason } = outcome else {
            panic!("expected a refusal, got {outcome:?}");
        };
        assert!(reason.contains("moved from"), "{reason}");
        assert_eq!(versions::resolve(dir.path(), "HEAD").unwrap(), ids[1]);
        assert!(journal::read(state.path(), "orders").unwrap().is_none());
        let audit = crate::engine::coord::audit::read(state.path(), None).unwrap();
        assert_eq!(audit.len(), 1);
        assert!(matches!(audit[0].outcome, RunOutcome::Refused { .. }));
    }

    #[tokio::test]
    async fn unfinished_journal_blocks_new_run() {
        let dir = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        let ids = repo(dir.path(), &["v1", "v2"]);
        let spec = spec(dir.path());
        let plan = build_plan(&spec, "v1").unwrap();
        let start = Record::RunStarted {
            run_id: "old".into(),
            kind: RunKind::Rollback,
            plan: Box::new(plan.clone()),
            user: "ana".into(),
            host: "box".into(),
            pid: 1,
            reason: None,
            at: journal::now(),
        };
        drop(Journal::create(state.path(), "orders", &start).unwrap());

        let (events, _receiver) = mpsc::unbounded_channel();
        let client = crate::engine::health::client();
        let outcome = execute(
            &plan,
            &spec,
            state.path(),
            &client,
            &events,
            RunOptions::default(),
        )
        .await;

        let RunOutcome::Refused { reason } = outcome else {
            panic!("expected a refusal, got {outcome:?}");
        };
        assert!(
            reason.contains("unfinished rollback of `orders`"),
            "{reason}"
        );
        assert!(
            reason.contains("rewind recover orders --resume"),
            "{reason}"
        );
        assert_eq!(versions::resolve(dir.path(), "HEAD").unwrap(), ids[1]);
    }
}
