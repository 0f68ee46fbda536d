//! The typed events every engine reports through. The dashboard folds them
//! into its state; the CLI prints them as lines or JSON.

use std::sync::Arc;

use serde::Serialize;

use crate::engine::health::{HealthState, Sample};
use crate::engine::rollback::{RunOutcome, StepKind};
use crate::engine::versions::VersionInfo;

/// One fact reported by an engine.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EngineEvent {
    /// The versions engine read a deploy directory. `complete` is false
    /// when `info.history` contains the deployed entry only.
    VersionsLoaded {
        service: String,
        info: VersionInfo,
        complete: bool,
    },
    /// The versions engine could not read a deploy directory.
    VersionsFailed { service: String, error: String },
    /// A health probe finished; `state` is the state after this sample.
    /// The name is shared with the probe task, so that a probe every second
    /// for each service allocates no copy of it.
    ProbeCompleted {
        service: Arc<str>,
        sample: Sample,
        state: HealthState,
    },
    /// A rollback step began.
    StepStarted {
        service: String,
        step: StepKind,
        index: usize,
        total: usize,
    },
    /// A line of output or progress from the running step.
    StepOutput { service: String, line: String },
    /// A rollback step ended.
    StepFinished {
        service: String,
        step: StepKind,
        ok: bool,
        detail: String,
    },
    /// A rollback run ended.
    RunFinished {
        service: String,
        outcome: RunOutcome,
    },
}

impl EngineEvent {
    /// Returns the service the event is about.
    pub fn service(&self) -> &str {
        match self {
            EngineEvent::VersionsLoaded { service, .. }
            | EngineEvent::VersionsFailed { service, .. }
            | EngineEvent::StepStarted { service, .. }
            | EngineEvent::StepOutput { service, .. }
            | EngineEvent::StepFinished { service, .. }
            | EngineEvent::RunFinished { service, .. } => service,
            EngineEvent::ProbeCompleted { service, .. } => service,
        }
    }
}
