//! The recent samples of one service in a compact form, for the dashboard's
//! sparkline, availability and last error.

use std::collections::VecDeque;
use std::num::NonZeroU16;
use std::time::{Duration, SystemTime};

use super::{HISTORY_LEN, ProbeOutcome, Sample};

/// One sample as [`History`] returns it: a [`Sample`] without its error
/// text, with the latency cut to whole microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistorySample {
    /// When the probe started.
    pub at: SystemTime,
    pub outcome: ProbeOutcome,
    /// HTTP status, when a response arrived.
    pub status: Option<u16>,
    pub latency: Duration,
}

impl HistorySample {
    pub fn passed(&self) -> bool {
        self.outcome == ProbeOutcome::Passed
    }
}

/// The last [`HISTORY_LEN`] samples of one service, 16 bytes each, and the
/// error text of the newest failed sample while that sample is kept.
///
/// The ring allocates on the first push, so a service that was never
/// probed costs no sample storage.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// Oldest first.
    entries: VecDeque<Entry>,
    /// Number of samples pushed so far, the evicted ones included.
    pushed: u64,
    last_error: Option<LastError>,
}

/// A sample as the ring stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    /// Nanoseconds since the Unix epoch, negative before it.
    at_nanos: i64,
    /// Saturates at `u32::MAX`, about 71 minutes.
    latency_micros: u32,
    /// HTTP status codes start at 100, so zero never occurs.
    status: Option<NonZeroU16>,
    outcome: ProbeOutcome,
}

/// Error text of the newest failed sample.
#[derive(Debug, Clone)]
struct LastError {
    /// Position of the sample among all pushed samples, counted from 0.
    sequence: u64,
    at: SystemTime,
    text: Box<str>,
}

impl History {
    /// Bytes one kept sample takes in the ring, the error text aside.
    pub const SAMPLE_BYTES: usize = std::mem::size_of::<Entry>();

    pub fn new() -> History {
        History::default()
    }

    /// Appends `sample` and drops the oldest one beyond [`HISTORY_LEN`].
    pub fn push(&mut self, sample: Sample) {
        if self.entries.capacity() == 0 {
            self.entries.reserve_exact(HISTORY_LEN);
        }
        if self.entries.len() == HISTORY_LEN {
            self.entries.pop_front();
        }
        self.entries.push_back(Entry::new(&sample));
        if let Some(text) = sample.error {
            self.last_error = Some(LastError {
                sequence: self.pushed,
                at: sample.at,
                text: text.into_boxed_str(),
            });
        }
        self.pushed += 1;
        // Frees the text once its sample has left the ring.
        if self
            .last_error
            .as_ref()
            .is_some_and(|error| error.sequence < self.first_sequence())
        {
            self.last_error = None;
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Returns the oldest sample.
    pub fn front(&self) -> Option<HistorySample> {
        self.entries.front().map(Entry::decode)
    }

    /// Returns the newest sample.
    pub fn back(&self) -> Option<HistorySample> {
        self.entries.back().map(Entry::decode)
    }

    /// Iterates over the samples, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = HistorySample> + ExactSizeIterator + '_ {
        self.entries.iter().map(Entry::decode)
    }

    /// Returns the start time and error text of the newest sample with an
    /// error, when that sample is still in the history.
    pub fn last_error(&self) -> Option<(SystemTime, &str)> {
        self.last_error
            .as_ref()
            .map(|error| (error.at, error.text.as_ref()))
    }

    /// Returns the share of passing samples, from 0.0 to 1.0, or `None`
    /// without samples.
    pub fn availability(&self) -> Option<f64> {
        if self.entries.is_empty() {
            return None;
        }
        let passed = self
            .entries
            .iter()
            .filter(|entry| entry.outcome == ProbeOutcome::Passed)
            .count();
        Some(passed as f64 / self.entries.len() as f64)
    }

    /// Returns the sequence number of the oldest kept sample.
    fn first_sequence(&self) -> u64 {
        self.pushed - self.entries.len() as u64
    }
}

impl Entry {
    fn new(sample: &Sample) -> Entry {
        Entry {
            at_nanos: nanos_since_epoch(sample.at),
            latency_micros: u32::try_from(sample.latency.as_micros()).unwrap_or(u32::MAX),
            status: sample.status.and_then(NonZeroU16::new),
            outcome: sample.outcome,
        }
    }

    fn decode(&self) -> HistorySample {
        let magnitude = Duration::from_nanos(self.at_nanos.unsigned_abs());
        let at = if self.at_nanos >= 0 {
            SystemTime::UNIX_EPOCH + magnitude
        } else {
            SystemTime::UNIX_EPOCH - magnitude
        };
        HistorySample {
            at,
            outcome: self.outcome,
            status: self.status.map(NonZeroU16::get),
            latency: Duration::from_micros(u64::from(self.latency_micros)),
        }
    }
}

/// Returns `at` in nanoseconds since the Unix epoch, saturating outside the
/// years 1677 to 2262 that an `i64` covers.
fn nanos_since_epoch(at: SystemTime) -> i64 {
    match at.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_nanos()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_nanos()).map_or(i64::MIN, |n| -n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(second: u64, outcome: ProbeOutcome) -> Sample {
        let passed = outcome == ProbeOutcome::Passed;
        Sample {
            at: SystemTime::UNIX_EPOCH + Duration::from_secs(second),
            outcome,
            status: Some(if passed { 200 } else { 500 }),
            latency: Duration::from_millis(5),
            error: (!passed).then(|| format!("status 500 at {second}")),
        }
    }

    #[test]
    fn entry_is_sixteen_bytes() {
        assert_eq!(History::SAMPLE_BYTES, 16);
    }

    #[test]
    fn history_round_trips_sample() {
        let sample = Sample {
            at: SystemTime::UNIX_EPOCH + Duration::new(1_790_000_000, 123_456_789),
            outcome: ProbeOutcome::BadStatus,
            status: Some(503),
            latency: Duration::from_nanos(12_345_678),
            error: Some("status 503".to_owned()),
        };
        let mut history = History::new();

        history.push(sample.clone());

        let kept = history.back().unwrap();
        assert_eq!(kept.at, sample.at);
        assert_eq!(kept.outcome, ProbeOutcome::BadStatus);
        assert_eq!(kept.status, Some(503));
        assert_eq!(kept.latency, Duration::from_micros(12_345));
        assert_eq!(history.last_error(), Some((sample.at, "status 503")));
    }

    #[test]
    fn history_keeps_missing_status() {
        let mut history = History::new();
        let mut refused = sample(7, ProbeOutcome::Refused);
        refused.status = None;

        history.push(refused);

        assert_eq!(history.back().unwrap().status, None);
        assert_eq!(history.back().unwrap().outcome, ProbeOutcome::Refused);
    }

    #[test]
    fn history_round_trips_extreme_values() {
        let before_epoch = SystemTime::UNIX_EPOCH - Duration::new(86_400, 500);
        let mut slow = sample(0, ProbeOutcome::TimedOut);
        slow.at = before_epoch;
        slow.latency = Duration::from_secs(5_000);
        let mut history = History::new();

        history.push(slow);

        let kept = history.back().unwrap();
        assert_eq!(kept.at, before_epoch);
        assert_eq!(kept.latency, Duration::from_micros(u64::from(u32::MAX)));
    }

    #[test]
    fn history_evicts_oldest_at_capacity() {
        let mut history = History::new();

        for second in 0..(HISTORY_LEN as u64 + 5) {
            history.push(sample(second, ProbeOutcome::Passed));
        }

        assert_eq!(history.len(), HISTORY_LEN);
        let oldest = history.front().unwrap().at;
        assert_eq!(oldest, SystemTime::UNIX_EPOCH + Duration::from_secs(5));
        let newest = history.back().unwrap().at;
        let expected = SystemTime::UNIX_EPOCH + Duration::from_secs(HISTORY_LEN as u64 + 4);
        assert_eq!(newest, expected);
        assert_eq!(history.entries.capacity(), HISTORY_LEN);
    }

    #[test]
    fn history_allocates_on_first_push() {
        let mut history = History::new();
        assert_eq!(history.entries.capacity(), 0);

        history.push(sample(0, ProbeOutcome::Passed));

        assert_eq!(history.entries.capacity(), HISTORY_LEN);
    }

    #[test]
    fn history_keeps_newest_error_only() {
        let mut history = History::new();
        history.push(sample(1, ProbeOutcome::BadStatus));
        history.push(sample(2, ProbeOutcome::Passed));
        history.push(sample(3, ProbeOutcome::BadStatus));
        history.push(sample(4, ProbeOutcome::Passed));

        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(3);
        assert_eq!(history.last_error(), Some((at, "status 500 at 3")));
    }

    #[test]
    fn history_forgets_evicted_error() {
        let mut history = History::new();
        history.push(sample(0, ProbeOutcome::BadStatus));

        for second in 1..HISTORY_LEN as u64 {
            history.push(sample(second, ProbeOutcome::Passed));
        }
        let at = SystemTime::UNIX_EPOCH;
        assert_eq!(history.last_error(), Some((at, "status 500 at 0")));

        history.push(sample(HISTORY_LEN as u64, ProbeOutcome::Passed));
        assert_eq!(history.last_error(), None);
        assert!(history.last_error.is_none());
    }

    #[test]
    fn history_availability_counts_passes() {
        let mut history = History::new();
        assert_eq!(history.availability(), None);

        for (second, outcome) in [
            ProbeOutcome::Passed,
            ProbeOutcome::BadStatus,
            ProbeOutcome::Passed,
            ProbeOutcome::Refused,
        ]
        .into_iter()
        .enumerate()
        {
            history.push(sample(second as u64, outcome));
        }

        assert_eq!(history.availability(), Some(0.5));
        let passed: Vec<bool> = history.iter().map(|kept| kept.passed()).collect();
        assert_eq!(passed, [true, false, true, false]);
    }

    #[test]
    fn history_iterates_oldest_first() {
        let mut history = History::new();
        for second in 0..3 {
            let mut passed = sample(second, ProbeOutcome::Passed);
            passed.latency = Duration::from_millis(10 * (second + 1));
            history.push(passed);
        }

        let latencies: Vec<Duration> = history.iter().map(|kept| kept.latency).collect();

        assert_eq!(
            latencies,
            [
                Duration::from_millis(10),
                Duration::from_millis(20),
                Duration::from_millis(30)
            ]
        );
        let newest_two: Vec<u128> = history
            .iter()
            .rev()
            .take(2)
            .map(|kept| kept.latency.as_millis())
            .collect();
        assert_eq!(newest_two, [30, 20]);
    }
}
