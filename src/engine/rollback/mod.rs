//! Rollback plans and their executor.

use serde::Serialize;

/// One step of a rollback plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    Lock,
    CheckClean,
    Checkout,
    Restart,
    VerifyHealth,
}

/// How a rollback run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum RunOutcome {
    Succeeded,
    Reverted { reason: String },
    Refused { reason: String },
}
