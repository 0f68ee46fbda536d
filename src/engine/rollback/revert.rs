//! Returning a service to where a run started: the original commit, the
//! safety backup when the data was touched, and a restart.

use std::path::Path;

use crate::config::ServiceSpec;
use crate::engine::backup::Catalog;
use crate::engine::versions;

use super::report::Reporter;
use super::steps::{blocking, restart};
use super::{Plan, RunOutcome, StepKind};

/// Reverts after `reason` and returns the outcome that reports both.
pub(super) async fn revert_outcome(
    plan: &Plan,
    spec: &ServiceSpec,
    state_dir: &Path,
    report: &mut Reporter<'_>,
    reason: String,
) -> RunOutcome {
    let data = report
        .touched_data
        .then(|| report.safety_backup.clone())
        .flatten();
    match revert(plan, spec, state_dir, data.as_deref(), report).await {
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

/// Checks the original version out again, restores the safety backup
/// `data` when the run touched the data, and restarts. A force checkout is
/// used only when the tree contains nothing but the run's own changes.
pub(super) async fn revert(
    plan: &Plan,
    spec: &ServiceSpec,
    state_dir: &Path,
    data: Option<&str>,
    report: &mut Reporter<'_>,
) -> Result<(), String> {
    report.started(StepKind::Revert, plan.steps.len());
    let result = revert_steps(plan, spec, state_dir, data, report).await;
    report.finished(StepKind::Revert, result)
}

async fn revert_steps(
    plan: &Plan,
    spec: &ServiceSpec,
    state_dir: &Path,
    data: Option<&str>,
    report: &mut Reporter<'_>,
) -> Result<String, String> {
    if plan.strategy.changes_code() {
        report.output(format!("checking out {} again", plan.from.label));
        return_to(spec, plan).await.map_err(|error| {
            format!(
                "cannot check out {}, so the tree may still hold {}: {error}",
                plan.from.label, plan.to.label
            )
        })?;
    }
    if let (Some(id), Some(backup)) = (data, spec.backup.as_ref()) {
        report.output(format!("restoring the safety backup {id}"));
        let catalog = Catalog::open(state_dir, &spec.name).map_err(|error| error.to_string())?;
        catalog
            .restore(id, backup, report.progress())
            .await
            .map_err(|error| {
                format!(
                    "cannot restore the safety backup {id}; the data may be partly restored \
                     from {}: {error}",
                    plan.restore
                        .as_ref()
                        .map_or("the chosen backup", |b| b.id.as_str())
                )
            })?;
    }
    restart(spec, report)
        .await
        .map(|_| format!("back on {} and restarted", plan.from.label))
        .map_err(|error| {
            format!(
                "back on {}, but its restart failed: {error}",
                plan.from.label
            )
        })
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
