//! Health probes: one shared HTTP client, one tokio task per service,
//! Kubernetes-style thresholds that derive a state, and a compact ring
//! buffer of samples for the dashboard.

mod history;
mod http;
mod monitor;
mod probe;
#[cfg(test)]
mod test_support;

use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::config::HealthSpec;

pub use history::{History, HistorySample};
pub use http::Client;
pub use monitor::{Monitor, observe_lateness};
pub use probe::{client, probe, redact_url, wait_healthy};

/// Number of samples kept per service.
pub const HISTORY_LEN: usize = 120;

/// Shortest probe period, so that a zero interval cannot spin a task.
const MIN_PERIOD: Duration = Duration::from_millis(1);

/// Health of a service as derived from its recent samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthState {
    /// Not enough samples yet.
    Unknown,
    /// `success_threshold` consecutive passing probes.
    Healthy,
    /// `failure_threshold` consecutive failing probes that got an HTTP response.
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

/// Outcome of one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeOutcome {
    /// An expected status code.
    Passed,
    /// The server returned a status code that is not expected.
    BadStatus,
    /// No connection was made, because the connection was refused, the host
    /// was unreachable or unresolved, or the TLS handshake failed.
    Refused,
    /// No response within the timeout.
    TimedOut,
    /// Any other transport error, such as a reset connection or a redirect loop.
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
    /// Time until the response headers arrived or the request failed. Reading
    /// the body is not included.
    #[serde(with = "humantime_serde")]
    pub latency: Duration,
    /// Error text, for failed probes.
    pub error: Option<String>,
}

impl Sample {
    pub fn passed(&self) -> bool {
        self.outcome == ProbeOutcome::Passed
    }
}

/// Threshold counters and derived state of one service. The samples
/// themselves are not kept here: the dashboard keeps them in a [`History`].
#[derive(Debug, Clone)]
pub struct Tracker {
    failure_threshold: u32,
    success_threshold: u32,
    consecutive_failures: u32,
    consecutive_successes: u32,
    state: HealthState,
}

impl Tracker {
    /// Creates a tracker in the `Unknown` state. A threshold of zero counts
    /// as one.
    pub fn new(spec: &HealthSpec) -> Self {
        Tracker {
            failure_threshold: spec.failure_threshold.max(1),
            success_threshold: spec.success_threshold.max(1),
            consecutive_failures: 0,
            consecutive_successes: 0,
            state: HealthState::Unknown,
        }
    }

    /// Counts `sample` and returns the state after it.
    ///
    /// `success_threshold` consecutive passes make the state `Healthy`.
    /// `failure_threshold` consecutive failures make it `Down` when the newest
    /// failure was refused or timed out, and `Unhealthy` otherwise. Any other
    /// sample keeps the previous state.
    pub fn record(&mut self, sample: &Sample) -> HealthState {
        if sample.passed() {
            self.consecutive_successes = self.consecutive_successes.saturating_add(1);
            self.consecutive_failures = 0;
            if self.consecutive_successes >= self.success_threshold {
                self.state = HealthState::Healthy;
            }
        } else {
            self.consecutive_failures = self.consecutive_failures.saturating_add(1);
            self.consecutive_successes = 0;
            if self.consecutive_failures >= self.failure_threshold {
                self.state = match sample.outcome {
                    ProbeOutcome::Refused | ProbeOutcome::TimedOut => HealthState::Down,
                    _ => HealthState::Unhealthy,
                };
            }
        }
        self.state
    }

    pub fn state(&self) -> HealthState {
        self.state
    }

    /// Returns the number of passes since the last failure.
    pub fn consecutive_successes(&self) -> u32 {
        self.consecutive_successes
    }

    /// Returns the number of failures since the last pass.
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::health_spec;
    use super::*;

    fn sample(outcome: ProbeOutcome) -> Sample {
        let passed = outcome == ProbeOutcome::Passed;
        Sample {
            at: SystemTime::now(),
            outcome,
            status: passed.then_some(200),
            latency: Duration::from_millis(5),
            error: (!passed).then(|| format!("{outcome:?}")),
        }
    }

    fn tracker(failure_threshold: u32, success_threshold: u32) -> Tracker {
        let mut spec = health_spec(reqwest::Url::parse("http://127.0.0.1:1/").unwrap());
        spec.failure_threshold = failure_threshold;
        spec.success_threshold = success_threshold;
        Tracker::new(&spec)
    }

    #[test]
    fn tracker_starts_unknown() {
        let tracker = tracker(3, 1);

        assert_eq!(tracker.state(), HealthState::Unknown);
        assert_eq!(tracker.consecutive_successes(), 0);
        assert_eq!(tracker.consecutive_failures(), 0);
    }

    #[test]
    fn tracker_turns_healthy_at_success_threshold() {
        for success_threshold in [1, 2, 3, 5] {
            let mut tracker = tracker(3, success_threshold);

            for pass in 1..success_threshold {
                let state = tracker.record(&sample(ProbeOutcome::Passed));
                assert_eq!(
                    state,
                    HealthState::Unknown,
                    "threshold {success_threshold}, pass {pass}"
                );
            }
            let state = tracker.record(&sample(ProbeOutcome::Passed));

            assert_eq!(state, HealthState::Healthy, "threshold {success_threshold}");
            assert_eq!(tracker.state(), HealthState::Healthy);
        }
    }

    #[test]
    fn tracker_turns_unhealthy_at_failure_threshold() {
        for failure_threshold in [1, 2, 3, 5] {
            let mut tracker = tracker(failure_threshold, 1);
            tracker.record(&sample(ProbeOutcome::Passed));

            for failure in 1..failure_threshold {
                let state = tracker.record(&sample(ProbeOutcome::BadStatus));
                assert_eq!(
                    state,
                    HealthState::Healthy,
                    "threshold {failure_threshold}, failure {failure}"
                );
            }
            let state = tracker.record(&sample(ProbeOutcome::BadStatus));

            assert_eq!(
                state,
                HealthState::Unhealthy,
                "threshold {failure_threshold}"
            );
        }
    }

    #[test]
    fn tracker_state_follows_newest_failure() {
        use ProbeOutcome::{BadStatus, Failed, Refused, TimedOut};
        let cases = [
            (vec![Refused, Refused], HealthState::Down),
            (vec![TimedOut, TimedOut], HealthState::Down),
            (vec![BadStatus, BadStatus], HealthState::Unhealthy),
            (vec![Failed, Failed], HealthState::Unhealthy),
            (vec![BadStatus, Refused], HealthState::Down),
            (vec![Refused, BadStatus], HealthState::Unhealthy),
            (vec![Refused, TimedOut, Failed], HealthState::Unhealthy),
            (vec![BadStatus, Failed, TimedOut], HealthState::Down),
        ];

        for (outcomes, expected) in cases {
            let mut tracker = tracker(2, 1);
            let mut state = tracker.state();
            for outcome in &outcomes {
                state = tracker.record(&sample(*outcome));
            }

            assert_eq!(state, expected, "outcomes {outcomes:?}");
        }
    }

    #[test]
    fn tracker_pass_resets_failure_count() {
        let mut tracker = tracker(3, 1);
        tracker.record(&sample(ProbeOutcome::Passed));

        for outcome in [
            ProbeOutcome::Refused,
            ProbeOutcome::Refused,
            ProbeOutcome::Passed,
            ProbeOutcome::Refused,
            ProbeOutcome::Refused,
        ] {
            tracker.record(&sample(outcome));
        }

        assert_eq!(tracker.state(), HealthState::Healthy);
        assert_eq!(tracker.consecutive_failures(), 2);
        assert_eq!(tracker.consecutive_successes(), 0);
    }

    #[test]
    fn tracker_failure_resets_success_count() {
        let mut tracker = tracker(3, 2);

        for outcome in [
            ProbeOutcome::Passed,
            ProbeOutcome::BadStatus,
            ProbeOutcome::Passed,
        ] {
            tracker.record(&sample(outcome));
        }

        assert_eq!(tracker.state(), HealthState::Unknown);
        assert_eq!(tracker.consecutive_successes(), 1);
    }
}
