//! The steps a run performs on a service: checkout, safety backup, data
//! restore, restart, health verification and settle time. Each returns a
//! one-line detail on success and the reason on failure.

use std::path::Path;
use std::time::Duration;

use crate::config::ServiceSpec;
use crate::engine::backup::Catalog;
use crate::engine::health::{self, Sample};
use crate::engine::process;
use crate::engine::versions;

use super::Plan;
use super::journal::{self, Record};
use super::report::Reporter;

/// Time between probes while verifying health after a restart. It is
/// shorter than a typical probe interval so a rollback ends soon after the
/// service is up: at 100 ms, one rollback in seven in the rollback
/// benchmark waited a whole interval more than its service's start.
const VERIFY_POLL: Duration = Duration::from_millis(50);

/// Maximum time between probes during the settle time.
const SETTLE_POLL: Duration = Duration::from_secs(1);

/// Backs up the current data and records the backup's id, so a revert
/// can restore it.
pub(super) async fn safety_backup(
    spec: &ServiceSpec,
    state_dir: &Path,
    report: &mut Reporter<'_>,
) -> Result<String, String> {
    let backup = spec
        .backup
        .as_ref()
        .ok_or_else(|| format!("`{}` has no backup table", spec.name))?;
    let catalog = Catalog::open(state_dir, &spec.name).map_err(|error| error.to_string())?;
    let dir = spec.deploy_dir.clone();
    let head = blocking(move || versions::resolve(&dir, "HEAD"))
        .await
        .map_err(|error| error.to_string())?;
    let manifest = catalog
        .create(backup, Some(&head), report.progress())
        .await
        .map_err(|error| with_hint(&error, error.hint()))?;

    let id = manifest.id.as_str().to_owned();
    report.record(&Record::SafetyBackupTaken {
        id: id.clone(),
        at: journal::now(),
    });
    report.safety_backup = Some(id.clone());
    Ok(format!("safety backup {id} ({} bytes)", manifest.size))
}

/// Restores the plan's backup over the live data.
pub(super) async fn restore_data(
    plan: &Plan,
    spec: &ServiceSpec,
    state_dir: &Path,
    report: &mut Reporter<'_>,
) -> Result<String, String> {
    let (Some(backup), Some(chosen)) = (spec.backup.as_ref(), plan.restore.as_ref()) else {
        return Err(format!(
            "the plan of `{}` names no backup to restore",
            spec.name
        ));
    };
    let catalog = Catalog::open(state_dir, &spec.name).map_err(|error| error.to_string())?;
    report.restored_backup = Some(chosen.id.clone());
    catalog
        .restore(&chosen.id, backup, report.progress())
        .await
        .map(|()| format!("restored backup {} ({})", chosen.id, chosen.label))
        .map_err(|error| with_hint(&error, error.hint()))
}

pub(super) fn with_hint(error: &dyn std::fmt::Display, hint: Option<String>) -> String {
    match hint {
        Some(hint) => format!("{error} ({hint})"),
        None => error.to_string(),
    }
}

pub(super) async fn checkout(spec: &ServiceSpec, commit: &str) -> Result<(), String> {
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
    client: &health::Client,
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
pub(super) async fn settle(
    spec: &ServiceSpec,
    client: &health::Client,
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
