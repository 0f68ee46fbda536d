//! Building a rollback plan: from and to versions, the commits the move
//! undoes (or applies, when going forward), and the ordered steps.

use serde::Serialize;

use crate::config::{ServiceSpec, Strategy};
use crate::engine::versions::{self, HistoryEntry, VersionInfo, VersionsError};

use super::StepKind;

/// Number of history entries read to name the from and to versions.
const HISTORY_LIMIT: usize = 200;

/// A version as a plan shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionRef {
    pub commit: String,
    pub short: String,
    /// The tag of the commit, else its short id.
    pub label: String,
}

/// One step as a plan shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedStep {
    pub step: StepKind,
    pub description: String,
}

/// What a rollback of one service will do, shown before anything runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub service: String,
    pub strategy: Strategy,
    pub from: VersionRef,
    pub to: VersionRef,
    /// Commits deployed now that the target does not contain, newest first.
    pub undone: Vec<HistoryEntry>,
    /// Commits the target contains that are not deployed now (a move
    /// forward), newest first.
    pub applied: Vec<HistoryEntry>,
    /// Uncommitted changes that will make the run stop before any change.
    pub dirty: Vec<String>,
    pub steps: Vec<PlannedStep>,
}

/// Reasons a plan cannot be built. All of them mean nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    #[error(transparent)]
    Versions(#[from] VersionsError),
    #[error("service `{service}` already runs `{label}`")]
    AlreadyAt { service: String, label: String },
}

impl RollbackError {
    /// Returns how to fix the error, when there is a known fix.
    pub fn hint(&self, service: &str) -> Option<String> {
        match self {
            RollbackError::Versions(VersionsError::UnknownRevision { .. }) => Some(format!(
                "run `rewind versions {service}` to list versions; a commit id, a tag or \
                 HEAD~N is accepted"
            )),
            RollbackError::Versions(VersionsError::Dirty { .. }) => {
                Some("commit, stash or discard the changes, then retry".to_owned())
            }
            RollbackError::AlreadyAt { .. } => Some(format!(
                "pick another version from `rewind versions {service}`"
            )),
            _ => None,
        }
    }
}

/// Builds the plan that moves `spec` from its deployed version to `rev`.
pub fn build_plan(spec: &ServiceSpec, rev: &str) -> Result<Plan, RollbackError> {
    let dir = &spec.deploy_dir;
    let info = versions::read(dir, spec.branch.as_deref(), HISTORY_LIMIT)?;
    let target = versions::resolve(dir, rev)?;

    let from = VersionRef {
        commit: info.commit.clone(),
        short: info.short.clone(),
        label: info.label(),
    };
    let to = version_ref(&info, &target);
    if from.commit == to.commit {
        return Err(RollbackError::AlreadyAt {
            service: spec.name.clone(),
            label: to.label,
        });
    }

    let undone = versions::commits_between(dir, &from.commit, &to.commit)?;
    let applied = versions::commits_between(dir, &to.commit, &from.commit)?;
    let steps = planned_steps(spec, &to);

    Ok(Plan {
        service: spec.name.clone(),
        strategy: spec.rollback.strategy,
        from,
        to,
        undone,
        applied,
        dirty: info.dirty,
        steps,
    })
}

fn version_ref(info: &VersionInfo, commit: &str) -> VersionRef {
    let entry = info.history.iter().find(|entry| entry.commit == commit);
    let short = entry.map_or_else(
        || commit[..7.min(commit.len())].to_owned(),
        |e| e.short.clone(),
    );
    let label = entry
        .and_then(|entry| entry.tags.first().cloned())
        .unwrap_or_else(|| short.clone());
    VersionRef {
        commit: commit.to_owned(),
        short,
        label,
    }
}

fn planned_steps(spec: &ServiceSpec, to: &VersionRef) -> Vec<PlannedStep> {
    let health = &spec.health;
    let probes = match health.success_threshold {
        1 => "1 passing probe".to_owned(),
        n => format!("{n} passing probes in a row"),
    };
    let step = |step, description: String| PlannedStep { step, description };
    vec![
        step(StepKind::Lock, format!("take the lock of `{}`", spec.name)),
        step(
            StepKind::CheckClean,
            format!(
                "check `{}` has no uncommitted changes",
                spec.deploy_dir.display()
            ),
        ),
        step(
            StepKind::Checkout,
            format!("check out {} ({})", to.label, to.short),
        ),
        step(
            StepKind::Restart,
            format!(
                "run `{}` (timeout {})",
                spec.restart.command.join(" "),
                humantime::format_duration(spec.restart.timeout)
            ),
        ),
        step(
            StepKind::VerifyHealth,
            format!(
                "wait for {probes} of {} within {}",
                crate::engine::health::redact_url(&health.url),
                humantime::format_duration(spec.rollback.verify_timeout)
            ),
        ),
    ]
}
