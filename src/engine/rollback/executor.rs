//! Runs a rollback plan: lock, clean check, checkout, restart, health
//! verification and settle time. Every step is journaled before it starts
//! and after it ends. When the checkout, the restart or the health checks
//! fail, or the run is cancelled, the original version is checked out and
//! restarted again before the run reports failure.

use std::path::Path;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;

use crate::config::ServiceSpec;
use crate::engine::coord::{Holder, ServiceLock};
use crate::engine::event::EngineEvent;
use crate::engine::health::{self, Sample};
use crate::engine::process;
use crate::engine::versions;

use super::cancel::Cancel;
use super::journal::{self, Journal, Record, RunKind};
use super::report::Reporter;
use super::{Plan, RunOutcome, StepKind};

/// Time between probes while verifying health after a restart. It is
/// shorter than a typical probe interval so a rollback ends soon after the
/// service is up.
const VERIFY_POLL: Duration = Duration::from_millis(100);

/// Longest time between probes during the settle time.
const SETTLE_POLL: Duration = Duration::from_secs(1);

/// Who started a run, why, and how to stop it.
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
    client: &reqwest::Client,
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

    let failure = change_version(plan, spec, client, &mut report, &options.cancel, &[]).await;
    let outcome = match failure {
        None => RunOutcome::Succeeded,
        Some(reason) => revert_outcome(plan, spec, &mut report, reason).await,
    };
    let outcome = finish(report, outcome);
    drop(lock);
    outcome
}

/// Takes the lock and opens the run's journal, or says why the run cannot start.
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

/// Runs checkout, restart, verification and settle time, skipping the
/// steps in `done`; returns why it failed, if it did.
pub(super) async fn change_version(
    plan: &Plan,
    spec: &ServiceSpec,
    client: &reqwest::Client,
    report: &mut Reporter<'_>,
    cancel: &Cancel,
    done: &[StepKind],
) -> Option<String> {
    let cancelled = || Some("cancelled by the user".to_owned());

    if !done.contains(&StepKind::Checkout) {
        report.started(StepKind::Checkout, 2);
        let checkout = checkout(spec, &plan.to.commit)
            .await
            .map(|()| format!("checked out {} ({})", plan.to.label, plan.to.short));
        if let Err(reason) = report.finished(StepKind::Checkout, checkout) {
            return Some(reason);
        }
    }
    if cancel.is_cancelled() {
        return cancelled();
    }

    if !done.contains(&StepKind::Restart) {
        report.started(StepKind::Restart, 3);
        let restart = restart(spec, report).await;
        if let Err(reason) = report.finished(StepKind::Restart, restart) {
            return Some(reason);
        }
    }
    if cancel.is_cancelled() {
        return cancelled();
    }

    report.started(StepKind::VerifyHealth, 4);
    let verify = tokio::select! {
        result = verify(spec, client, report) => result,
        () = cancel.cancelled() => Err("cancelled by the user".to_owned()),
    };
    if let Err(reason) = report.finished(StepKind::VerifyHealth, verify) {
        return Some(reason);
    }

    if spec.rollback.settle.is_zero() {
        return None;
    }
    report.started(StepKind::Settle, 5);
    let settle = tokio::select! {
        result = settle(spec, client, report) => result,
        () = cancel.cancelled() => Err("cancelled by the user".to_owned()),
    };
    report.finished(StepKind::Settle, settle).err()
}

/// Reverts after `reason` and returns the outcome that reports both.
pub(super) async fn revert_outcome(
    plan: &Plan,
    spec: &ServiceSpec,
    report: &mut Reporter<'_>,
    reason: String,
) -> RunOutcome {
    match revert(plan, spec, report).await {
        Ok(()) => RunOutcome::Reverted { reason },
        Err(revert_error) => {
            tracing::error!(service = %spec.name, %revert_error, "revert failed");
            RunOutcome::RevertFailed {
                reason,
                revert_error,
            }
        }
    }
}

/// Checks the original version out again and restarts it. A force
/// checkout is used only when the tree holds nothing but the run's own
/// changes.
async fn revert(plan: &Plan, spec: &ServiceSpec, report: &mut Reporter<'_>) -> Result<(), String> {
    report.started(StepKind::Revert, plan.steps.len());
    report.output(format!("checking out {} again", plan.from.label));
    let result = match return_to(spec, plan).await {
        Ok(()) => restart(spec, report)
            .await
            .map(|_| format!("back on {} and restarted", plan.from.label))
            .map_err(|error| {
                format!(
                    "back on {}, but its restart failed: {error}",
                    plan.from.label
                )
            }),
        Err(error) => Err(format!(
            "cannot check out {}, so the tree may still hold {}: {error}",
            plan.from.label, plan.to.label
        )),
    };
    report.finished(StepKind::Revert, result)
}

/// Puts the tree back on the plan's from version, overwriting only files
/// that hold one of the two versions' contents.
pub(super) async fn return_to(spec: &ServiceSpec, plan: &Plan) -> Result<(), String> {
    let dir = spec.deploy_dir.clone();
    let (from, to) = (plan.from.commit.clone(), plan.to.commit.clone());
    let branch = spec.branch.clone();
    blocking(move || {
        let foreign = versions::foreign_changes(&dir, &from, &to)?;
        if !foreign.is_empty() {
            return Ok(Err(format!(
                "changes not made by rewind: {}; resolve them by hand",
                foreign.join(", ")
            )));
        }
        versions::force_checkout(&dir, &from, branch.as_deref())?;
        Ok(Ok(()))
    })
    .await
    .map_err(|error| error.to_string())?
}

async fn checkout(spec: &ServiceSpec, commit: &str) -> Result<(), String> {
    let dir = spec.deploy_dir.clone();
    let branch = spec.branch.clone();
    let commit = commit.to_owned();
    blocking(move || versions::checkout(&dir, &commit, branch.as_deref()))
        .await
        .map(|_| ())
        .map_err(|error| error.to_string())
}

pub(super) async fn restart(spec: &ServiceSpec, report: &Reporter<'_>) -> Result<String, String> {
    let restart = &spec.restart;
    let cwd = &spec.deploy_dir;
    process::run_with_env(
        &restart.command,
        &restart.env,
        cwd,
        restart.timeout,
        |line| report.output(line),
    )
    .await
    .map(|()| "restart command exited 0".to_owned())
    .map_err(|error| match error.hint() {
        Some(hint) => format!("{error} ({hint})"),
        None => error.to_string(),
    })
}

fn describe_probe(sample: &Sample) -> String {
    match (&sample.status, &sample.error) {
        (_, Some(error)) => format!("probe failed: {error}"),
        (Some(status), None) => format!(
            "probe passed: status {status} in {} ms",
            sample.latency.as_millis()
        ),
        (None, None) => "probe passed".to_owned(),
    }
}

pub(super) async fn verify(
    spec: &ServiceSpec,
    client: &reqwest::Client,
    report: &Reporter<'_>,
) -> Result<String, String> {
    let health = &spec.health;
    let deadline = spec.rollback.verify_timeout;
    // Probes repeat every VERIFY_POLL, so only a changed result is shown.
    let mut previous = String::new();
    let result = health::wait_healthy(client, health, deadline, VERIFY_POLL, |sample| {
        let line = describe_probe(sample);
        let key = sample.error.clone().unwrap_or_else(|| "passed".to_owned());
        if key != previous {
            report.output(line);
            previous = key;
        }
    })
    .await;
    match result {
        Ok(samples) => Ok(format!("healthy after {} probes", samples.len())),
        Err(samples) => Err(format!(
            "health did not pass within {} ({} probes, last: {})",
            humantime::format_duration(deadline),
            samples.len(),
            samples
                .last()
                .and_then(|sample| sample.error.clone())
                .unwrap_or_else(|| "no answer".to_owned())
        )),
    }
}

/// Probes for the settle time; fails once `failure_threshold` probes in a
/// row fail.
async fn settle(
    spec: &ServiceSpec,
    client: &reqwest::Client,
    report: &Reporter<'_>,
) -> Result<String, String> {
    let health = &spec.health;
    let period = health.interval.min(SETTLE_POLL);
    let deadline = tokio::time::Instant::now() + spec.rollback.settle;
    let mut ticker = tokio::time::interval(period);
    let (mut probes, mut failures) = (0, 0);
    while tokio::time::Instant::now() < deadline {
        ticker.tick().await;
        let sample = health::probe(client, health).await;
        probes += 1;
        if sample.passed() {
            failures = 0;
            continue;
        }
        failures += 1;
        report.output(describe_probe(&sample));
        if failures >= health.failure_threshold {
            return Err(format!(
                "health failed {failures} times in a row during the settle time: {}",
                sample.error.unwrap_or_default()
            ));
        }
    }
    Ok(format!(
        "stayed healthy for {} ({probes} probes)",
        humantime::format_duration(spec.rollback.settle)
    ))
}

/// Runs blocking git work off the async threads.
pub(super) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, versions::VersionsError> + Send + 'static,
) -> Result<T, versions::VersionsError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(join_error) => std::panic::resume_unwind(join_error.into_panic()),
    }
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
