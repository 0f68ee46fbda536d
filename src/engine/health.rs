//! Health probes: one shared HTTP client, one tokio task per service, a ring
//! buffer of samples and Kubernetes-style thresholds that derive a state.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tokio::sync::mpsc;

use crate::config::{HealthSpec, ServiceSpec};
use crate::engine::event::EngineEvent;

/// Number of samples kept per service.
pub const HISTORY_LEN: usize = 120;

/// Health of a service as derived from its recent samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthState {
    /// Not enough samples yet.
    Unknown,
    /// `success_threshold` consecutive passing probes.
    Healthy,
    /// `failure_threshold` consecutive failing probes that got an answer.
    Unhealthy,
    /// `failure_threshold` consecutive probes that were refused or timed out.
    Down,
}

impl HealthState {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::Unknown => "unknown",
            HealthState::Healthy => "healthy",
            HealthState::Unhealthy => "unhealthy",
            HealthState::Down => "down",
        }
    }
}

/// How a probe ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeOutcome {
    /// An expected status code.
    Passed,
    /// The server answered with a status code that is not expected.
    BadStatus,
    /// The connection was refused.
    Refused,
    /// No answer within the timeout.
    TimedOut,
    /// Any other transport error.
    Failed,
}

/// One probe result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sample {
    /// When the probe started.
    #[serde(with = "humantime_serde")]
    pub at: SystemTime,
    pub outcome: ProbeOutcome,
    /// HTTP status, when the server answered.
    pub status: Option<u16>,
    #[serde(with = "humantime_serde")]
    pub latency: Duration,
    /// What went wrong, for failed probes.
    pub error: Option<String>,
}

impl Sample {
    pub fn passed(&self) -> bool {
        self.outcome == ProbeOutcome::Passed
    }
}

/// Sample history and threshold counters of one service.
#[derive(Debug, Clone)]
pub struct Tracker {
    failure_threshold: u32,
    success_threshold: u32,
    consecutive_failures: u32,
    consecutive_successes: u32,
    state: HealthState,
    samples: VecDeque<Sample>,
}

impl Tracker {
    pub fn new(spec: &HealthSpec) -> Self {
        let _ = spec;
        todo!()
    }

    /// Adds a sample and returns the state after it.
    pub fn record(&mut self, sample: Sample) -> HealthState {
        let _ = sample;
        todo!()
    }

    pub fn state(&self) -> HealthState {
        self.state
    }

    /// Samples, oldest first, at most [`HISTORY_LEN`].
    pub fn samples(&self) -> &VecDeque<Sample> {
        &self.samples
    }
}

/// Builds the one HTTP client every probe shares.
pub fn client() -> reqwest::Client {
    todo!()
}

/// Probes `spec.url` once with `spec.timeout`.
pub async fn probe(client: &reqwest::Client, spec: &HealthSpec) -> Sample {
    let _ = (client, spec);
    todo!()
}

/// Handle to the running monitor. Dropping it stops every probe task.
pub struct Monitor {
    _private: (),
}

impl Monitor {
    /// Starts one task per service that probes on its interval and sends a
    /// [`EngineEvent::ProbeCompleted`] for each sample.
    pub fn start(
        client: reqwest::Client,
        services: &[ServiceSpec],
        events: mpsc::UnboundedSender<EngineEvent>,
    ) -> Monitor {
        let _ = (client, services, events);
        todo!()
    }

    /// Asks the task of `service` to probe now instead of at its next tick.
    pub fn probe_now(&self, service: &str) {
        let _ = service;
        todo!()
    }
}
