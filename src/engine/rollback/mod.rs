//! Rollbacks: a [`Plan`] built from a request and shown before anything
//! runs, and the executor that runs it step by step, verifies health and
//! returns the service to where it started when a step fails.

mod cancel;
#[cfg(test)]
mod data_tests;
mod executor;
pub mod journal;
mod plan;
mod recover;
mod report;
pub(crate) use report::new_run_id;
mod revert;
mod steps;
#[cfg(test)]
pub(crate) mod test_support;
mod undo;

use serde::{Deserialize, Serialize};

pub use cancel::{Cancel, CancelHandle};
pub use executor::{RunOptions, execute};
pub use plan::{
    BackupRef, Plan, PlanRequest, PlannedStep, RollbackError, VersionRef, build_plan, plan_rollback,
};
pub use recover::{RecoverError, RecoveryPlan, plan_recovery, recover};
pub use undo::{UndoError, plan_undo};

/// One step of a rollback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// Take the service lock.
    Lock,
    /// Check that the working tree has no uncommitted changes.
    CheckClean,
    /// Back up the current data before a restore.
    SafetyBackup,
    /// Check out the target version.
    Checkout,
    /// Restore the chosen backup.
    RestoreData,
    /// Run the restart command.
    Restart,
    /// Wait until health passes `success_threshold` probes in a row.
    VerifyHealth,
    /// Watch health stay passing for the settle time.
    Settle,
    /// Check the original version out again and restart, after a failure.
    Revert,
}

impl StepKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Lock => "lock",
            StepKind::CheckClean => "check clean",
            StepKind::SafetyBackup => "safety backup",
            StepKind::Checkout => "checkout",
            StepKind::RestoreData => "restore data",
            StepKind::Restart => "restart",
            StepKind::VerifyHealth => "verify health",
            StepKind::Settle => "settle",
            StepKind::Revert => "revert",
        }
    }
}

/// Outcome of a rollback run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum RunOutcome {
    /// The target version runs and passed health verification.
    Succeeded,
    /// A step failed; the original version was checked out and restarted.
    Reverted { reason: String },
    /// A step failed and returning to the original version failed too.
    RevertFailed {
        reason: String,
        revert_error: String,
    },
    /// Nothing was changed: the lock was held, the tree dirty, or the
    /// target invalid.
    Refused { reason: String },
}

impl RunOutcome {
    /// Returns the process exit code for this outcome: 0 done, 1 failed,
    /// 3 refused before any change.
    pub fn exit_code(&self) -> i32 {
        match self {
            RunOutcome::Succeeded => 0,
            RunOutcome::Reverted { .. } | RunOutcome::RevertFailed { .. } => 1,
            RunOutcome::Refused { .. } => 3,
        }
    }
}
