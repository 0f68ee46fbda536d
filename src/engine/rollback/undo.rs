//! Undoing the last rollback of a service: a plan back to the version the
//! newest successful run left, built from the audit log.

use std::path::Path;

use crate::config::{ServiceSpec, Strategy};
use crate::engine::coord::audit::{self, AuditError};
use crate::engine::versions;

use super::{Plan, PlanRequest, RollbackError, RunOutcome, plan_rollback};

/// Reasons an undo cannot be planned. None of them changed anything.
#[derive(Debug, thiserror::Error)]
pub enum UndoError {
    #[error("no successful rollback of `{service}` to undo")]
    NothingToUndo { service: String },
    #[error("`{service}` moved to {now} after its last rollback to {to}")]
    Moved {
        service: String,
        to: String,
        now: String,
    },
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error(transparent)]
    Versions(#[from] versions::VersionsError),
    #[error(transparent)]
    Plan(#[from] RollbackError),
}

impl UndoError {
    /// Returns how to fix the error, when there is a known fix.
    pub fn hint(&self, service: &str) -> Option<String> {
        match self {
            UndoError::NothingToUndo { .. } => Some(format!(
                "`rewind history --service {service}` lists earlier runs"
            )),
            UndoError::Moved { .. } => Some(format!(
                "roll back to a chosen version with `rewind rollback {service} --to REV`"
            )),
            UndoError::Plan(error) => error.hint(service),
            _ => None,
        }
    }
}

/// Builds the plan that returns `spec` to where its newest successful run
/// started: its code, and its data when the run restored data.
pub fn plan_undo(spec: &ServiceSpec, state_dir: &Path) -> Result<Plan, UndoError> {
    let runs = audit::read(state_dir, Some(&spec.name))?;
    let last = runs
        .iter()
        .find(|entry| entry.outcome == RunOutcome::Succeeded)
        .ok_or_else(|| UndoError::NothingToUndo {
            service: spec.name.clone(),
        })?;

    let head = versions::resolve(&spec.deploy_dir, "HEAD")?;
    if head != last.to.commit {
        return Err(UndoError::Moved {
            service: spec.name.clone(),
            to: last.to.label.clone(),
            now: head[..7.min(head.len())].to_owned(),
        });
    }
    // A run that restored data left a safety backup of the data it replaced.
    let request = match &last.safety_backup {
        None => PlanRequest {
            target: Some(last.from.commit.clone()),
            strategy: Some(Strategy::Code),
            backup: None,
        },
        Some(id) if last.from.commit == last.to.commit => PlanRequest {
            target: None,
            strategy: Some(Strategy::Data),
            backup: Some(id.clone()),
        },
        Some(id) => PlanRequest {
            target: Some(last.from.commit.clone()),
            strategy: Some(Strategy::CodeData),
            backup: Some(id.clone()),
        },
    };
    Ok(plan_rollback(spec, state_dir, &request)?)
}
