//! Runs a rollback plan: lock, clean check, checkout, restart and health
//! verification, reporting each step as events. When the checkout, the
//! restart or the verification fails, the original version is checked out
//! and restarted again before the run reports failure.

use std::path::Path;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;

use crate::config::ServiceSpec;
use crate::engine::coord::ServiceLock;
use crate::engine::event::EngineEvent;
use crate::engine::health;
use crate::engine::process;
use crate::engine::versions;

use super::{Plan, RunOutcome, StepKind};

/// Time between probes while verifying health after a restart. It is
/// shorter than a typical probe interval so a rollback ends soon after the
/// service is up.
const VERIFY_POLL: Duration = Duration::from_millis(100);

/// Reports one run's steps on the event stream.
struct Reporter<'a> {
    service: &'a str,
    events: &'a UnboundedSender<EngineEvent>,
    total: usize,
}

impl Reporter<'_> {
    fn send(&self, event: EngineEvent) {
        // A closed channel means no front end listens, and the run continues.
        let _ = self.events.send(event);
    }

    fn started(&self, step: StepKind, index: usize) {
        tracing::info!(service = self.service, step = step.as_str(), "step started");
        self.send(EngineEvent::StepStarted {
            service: self.service.to_owned(),
            step,
            index,
            total: self.total,
        });
    }

    fn output(&self, line: String) {
        self.send(EngineEvent::StepOutput {
            service: self.service.to_owned(),
            line,
        });
    }

    fn finished(&self, step: StepKind, result: Result<String, String>) -> Result<(), String> {
        let ok = result.is_ok();
        let detail = match &result {
            Ok(detail) | Err(detail) => detail.clone(),
        };
        if ok {
            tracing::info!(service = self.service, step = step.as_str(), %detail, "step done");
        } else {
            tracing::warn!(service = self.service, step = step.as_str(), %detail, "step failed");
        }
        self.send(EngineEvent::StepFinished {
            service: self.service.to_owned(),
            step,
            ok,
            detail,
        });
        result.map(|_| ())
    }

    fn outcome(&self, outcome: RunOutcome) -> RunOutcome {
        tracing::info!(service = self.service, ?outcome, "run finished");
        self.send(EngineEvent::RunFinished {
            service: self.service.to_owned(),
            outcome: outcome.clone(),
        });
        outcome
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
) -> RunOutcome {
    let report = Reporter {
        service: &spec.name,
        events,
        total: plan.steps.len(),
    };
    tracing::info!(service = %spec.name, from = %plan.from.label, to = %plan.to.label, "rollback started");

    // Steps before the checkout change nothing, so their failures refuse the run.
    report.started(StepKind::Lock, 0);
    let lock = match ServiceLock::acquire(state_dir, &spec.name) {
        Ok(lock) => lock,
        Err(error) => {
            let reason = error.to_string();
            let _ = report.finished(StepKind::Lock, Err(reason.clone()));
            return report.outcome(RunOutcome::Refused { reason });
        }
    };
    let _ = report.finished(StepKind::Lock, Ok("lock taken".to_owned()));

    report.started(StepKind::CheckClean, 1);
    let clean = check_unchanged(plan, spec).await;
    if let Err(reason) = report.finished(StepKind::CheckClean, clean) {
        return report.outcome(RunOutcome::Refused { reason });
    }

    let failure = change_version(plan, spec, client, &report).await;
    let outcome = match failure {
        None => RunOutcome::Succeeded,
        Some(reason) => match revert(plan, spec, &report).await {
            Ok(()) => RunOutcome::Reverted { reason },
            Err(revert_error) => {
                tracing::error!(service = %spec.name, %revert_error, "revert failed");
                RunOutcome::RevertFailed {
                    reason,
                    revert_error,
                }
            }
        },
    };
    drop(lock);
    report.outcome(outcome)
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
            "working tree `{}` has uncommitted changes: {}",
            spec.deploy_dir.display(),
            files.join(", ")
        ))
    }
}

/// Runs checkout, restart and verification; returns why it failed, if it did.
async fn change_version(
    plan: &Plan,
    spec: &ServiceSpec,
    client: &reqwest::Client,
    report: &Reporter<'_>,
) -> Option<String> {
    report.started(StepKind::Checkout, 2);
    let checkout = checkout(spec, &plan.to.commit)
        .await
        .map(|()| format!("checked out {} ({})", plan.to.label, plan.to.short));
    if let Err(reason) = report.finished(StepKind::Checkout, checkout) {
        return Some(reason);
    }

    report.started(StepKind::Restart, 3);
    let restart = restart(spec, report).await;
    if let Err(reason) = report.finished(StepKind::Restart, restart) {
        return Some(reason);
    }

    report.started(StepKind::VerifyHealth, 4);
    let verify = verify(spec, client, report).await;
    report.finished(StepKind::VerifyHealth, verify).err()
}

/// Checks the original version out again and restarts it.
async fn revert(plan: &Plan, spec: &ServiceSpec, report: &Reporter<'_>) -> Result<(), String> {
    report.started(StepKind::Revert, plan.steps.len());
    report.output(format!("checking out {} again", plan.from.label));
    let result = match checkout(spec, &plan.from.commit).await {
        Ok(()) => restart(spec, report)
            .await
            .map(|_| format!("back on {} and restarted", plan.from.label)),
        Err(error) => Err(format!("cannot check out {}: {error}", plan.from.label)),
    };
    report.finished(StepKind::Revert, result)
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

async fn restart(spec: &ServiceSpec, report: &Reporter<'_>) -> Result<String, String> {
    let restart = &spec.restart;
    process::run(
        &restart.command,
        &spec.deploy_dir,
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

async fn verify(
    spec: &ServiceSpec,
    client: &reqwest::Client,
    report: &Reporter<'_>,
) -> Result<String, String> {
    let health = &spec.health;
    let deadline = spec.rollback.verify_timeout;
    let result = health::wait_healthy(client, health, deadline, VERIFY_POLL, |sample| {
        let line = match (&sample.status, &sample.error) {
            (_, Some(error)) => format!("probe failed: {error}"),
            (Some(status), None) => format!(
                "probe passed: status {status} in {} ms",
                sample.latency.as_millis()
            ),
            (None, None) => "probe passed".to_owned(),
        };
        report.output(line);
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

/// Runs blocking git work off the async threads.
async fn blocking<T: Send + 'static>(
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
        let outcome = execute(&plan, &spec, state.path(), &client, &events).await;

        let RunOutcome::Refused { reason } = outcome else {
            panic!("expected a refusal, got {outcome:?}");
        };
        assert!(reason.contains("moved from"), "{reason}");
        assert_eq!(versions::resolve(dir.path(), "HEAD").unwrap(), ids[1]);
    }
}
