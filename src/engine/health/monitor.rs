//! Probe tasks, one per service, each with its own [`Tracker`] and sending
//! an event per sample. The tasks keep no sample history: the receiver of
//! the events keeps what it needs. One scheduler thread sends each task the
//! due time of its next periodic probe.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant as StdInstant};

use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time;
use tracing::{debug, info};

use super::http::Client;
use super::probe::{plain_request, probe_with, redact_url};
use super::{MIN_PERIOD, Tracker};
use crate::config::{HealthSpec, ServiceSpec};
use crate::engine::event::EngineEvent;

/// Function that receives the lateness of every probe, set once per process.
static LATENESS_OBSERVER: OnceLock<fn(Duration)> = OnceLock::new();

/// Sets a function that every probe task calls just before a probe starts,
/// with the time since the probe was due: its lateness. Benchmarks use it;
/// the dashboard and the CLI never set it. Returns `false`, and changes
/// nothing, when an observer is already set.
pub fn observe_lateness(observer: fn(Duration)) -> bool {
    LATENESS_OBSERVER.set(observer).is_ok()
}

/// Handle to the running monitor. Dropping it stops every probe task, the
/// probe thread and the scheduler thread.
pub struct Monitor {
    tasks: Vec<JoinHandle<()>>,
    wakers: HashMap<String, Arc<Notify>>,
    /// Sender whose drop ends the probe thread's runtime.
    _stop: Option<oneshot::Sender<()>>,
}

/// A request to the scheduler thread: the probe of service `index` ran at
/// `at`, out of schedule, so its next periodic probe is one period later.
struct Reset {
    index: usize,
    at: StdInstant,
}

/// Due time of a service's next periodic probe, passed from the scheduler
/// thread to the probe task. It replaces a one-slot channel per service,
/// which took about 1.1 KiB of heap each (heaptrack).
#[derive(Default)]
struct Tick {
    /// Due time that the task has not received yet. While one is pending,
    /// the scheduler drops newer ones, so lateness counts from the first
    /// missed due time.
    due: std::sync::Mutex<Option<StdInstant>>,
    ready: Notify,
}

impl Tick {
    /// Stores `due` unless a due time is pending, and wakes the task.
    fn send(&self, due: StdInstant) {
        let mut pending = self
            .due
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if pending.is_none() {
            *pending = Some(due);
            self.ready.notify_one();
        }
    }

    /// Waits for the next due time and takes it.
    async fn recv(&self) -> StdInstant {
        loop {
            self.ready.notified().await;
            let pending = self
                .due
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            if let Some(due) = pending {
                return due;
            }
        }
    }
}

/// The scheduler thread's side of one service.
struct Slot {
    period: Duration,
    /// Due-time cell shared with the probe task, which holds the only other
    /// reference.
    tick: Arc<Tick>,
    /// Incremented by each reset, so that heap entries from before it are
    /// skipped.
    generation: u64,
}

/// Sends each service's due times to its task, sleeping until the next one
/// in `recv_timeout`, which waits on the kernel's high-resolution timers.
/// tokio's timer wheel ticks in whole milliseconds, which made a probe
/// start about 1 ms after its due time at the median and 2 ms at p99 with
/// 1,000 services. Returns when the monitor is dropped.
fn schedule(
    mut slots: Vec<Slot>,
    first: Vec<StdInstant>,
    resets: std::sync::mpsc::Receiver<Reset>,
) {
    let mut heap: BinaryHeap<Reverse<(StdInstant, usize, u64)>> = first
        .into_iter()
        .enumerate()
        .map(|(index, due)| Reverse((due, index, 0)))
        .collect();
    loop {
        let Some(&Reverse((due, index, generation))) = heap.peek() else {
            return;
        };
        let now = StdInstant::now();
        if due > now {
            match resets.recv_timeout(due - now) {
                Ok(Reset { index, at }) => {
                    if let Some(slot) = slots.get_mut(index) {
                        slot.generation += 1;
                        heap.push(Reverse((at + slot.period, index, slot.generation)));
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            continue;
        }
        heap.pop();
        let slot = &slots[index];
        if generation != slot.generation {
            continue;
        }
        // The task stopped, so nothing more is scheduled for it.
        if Arc::strong_count(&slot.tick) == 1 {
            continue;
        }
        slot.tick.send(due);
        // When the thread was held up past the next due time, that probe is
        // due now, so a delay costs one late probe, not a burst.
        let next = (due + slot.period).max(now);
        heap.push(Reverse((next, index, generation)));
    }
}

/// Time slice that the probe and scheduler threads request.
const SHORT_SLICE: Duration = Duration::from_micros(100);

/// Asks the kernel to run the calling thread in slices of [`SHORT_SLICE`]
/// instead of its default (1.4 ms on the benchmark machine). Linux's EEVDF
/// scheduler gives a thread with a shorter slice an earlier deadline, so
/// the thread can preempt a drawing thread on the same core when a probe
/// falls due. In the health benchmark the p99 lateness while the dashboard
/// draws went from 0.78 ms to 0.16 ms. The call keeps the policy and the
/// nice value, so it needs no privilege. Kernels without `sched_setattr`
/// return an error, and the thread keeps its default slice.
///
/// NOTE: measured on Linux 6.18 only. Which earlier kernels honour a
/// requested slice for normal threads was not checked.
pub fn prefer_short_slices() -> std::io::Result<()> {
    /// `struct sched_attr` as the kernel's first version defines it.
    #[repr(C)]
    struct SchedAttr {
        size: u32,
        policy: u32,
        flags: u64,
        nice: i32,
        priority: u32,
        runtime: u64,
        deadline: u64,
        period: u64,
    }
    let nice = rustix::process::getpriority_process(None).unwrap_or(0);
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy: libc::SCHED_OTHER as u32,
        flags: 0,
        nice,
        priority: 0,
        runtime: SHORT_SLICE.as_nanos() as u64,
        deadline: 0,
        period: 0,
    };
    // SAFETY: sched_setattr reads `size` bytes through the pointer, and it
    // points at a live, initialised `SchedAttr` of that size. Pid 0 is the
    // calling thread, and the last argument (flags) must be 0.
    let result = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
    if result == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Runs [`prefer_short_slices`] and logs a failure.
fn ask_for_short_slices() {
    if let Err(error) = prefer_short_slices() {
        debug!(%error, "sched_setattr failed, so the health threads keep the default time slice");
    }
}

impl Monitor {
    /// Starts one task per service that probes on its interval and sends a
    /// [`EngineEvent::ProbeCompleted`] for each sample.
    ///
    /// The tasks run on a runtime of their own in one thread, so a caller
    /// that is drawing or folding events does not delay the start of a
    /// probe. That thread and the scheduler thread request short time
    /// slices from the kernel (see [`prefer_short_slices`]).
    ///
    /// The first probe of each service starts at once. The periodic probes
    /// that follow are spread over the interval by the service's position in
    /// `services`, so that a thousand services with the same interval do not
    /// all probe in the same millisecond. A task stops when the monitor is
    /// dropped or when the receiver of `events` is dropped.
    pub fn start(
        client: Client,
        services: &[ServiceSpec],
        events: mpsc::UnboundedSender<EngineEvent>,
    ) -> Monitor {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
        {
            Ok(runtime) => runtime,
            Err(error) => {
                tracing::error!(%error, "failed to start the health probe runtime, so no service is probed");
                return Monitor {
                    tasks: Vec::new(),
                    wakers: HashMap::new(),
                    _stop: None,
                };
            }
        };
        let mut tasks = Vec::with_capacity(services.len());
        let mut wakers = HashMap::with_capacity(services.len());
        let mut slots = Vec::with_capacity(services.len());
        let mut first = Vec::with_capacity(services.len());
        let (resets, reset_receiver) = std::sync::mpsc::channel();
        let started = StdInstant::now();

        for (index, service) in services.iter().enumerate() {
            let waker = Arc::new(Notify::new());
            let period = service.health.interval.max(MIN_PERIOD);
            let phase = index as f64 / services.len() as f64;
            let tick = Arc::new(Tick::default());
            slots.push(Slot {
                period,
                tick: Arc::clone(&tick),
                generation: 0,
            });
            first.push(started + period + period.mul_f64(phase));
            let task = ServiceTask {
                client: client.clone(),
                service: Arc::from(service.name.as_str()),
                index,
                spec: service.health.clone(),
                tick,
                resets: resets.clone(),
                waker: Arc::clone(&waker),
                events: events.clone(),
            };
            tasks.push(runtime.spawn(task.run()));
            wakers.insert(service.name.clone(), waker);
        }

        let (stop, stopped) = oneshot::channel::<()>();
        let spawned = std::thread::Builder::new()
            .name("health-probes".to_owned())
            .spawn(move || {
                ask_for_short_slices();
                // Returns when the monitor drops its end of the channel.
                // Dropping the runtime then drops every task still on it.
                let _ = runtime.block_on(stopped);
            });
        if let Err(error) = spawned {
            tracing::error!(%error, "failed to start the health probe thread, so no service is probed");
        }
        // The tasks hold the only senders of resets, so the thread returns
        // once every task has stopped.
        drop(resets);
        if !slots.is_empty() {
            let spawned = std::thread::Builder::new()
                .name("health-schedule".to_owned())
                .spawn(move || {
                    ask_for_short_slices();
                    schedule(slots, first, reset_receiver);
                });
            if let Err(error) = spawned {
                tracing::error!(%error, "cannot start the health probe scheduler");
            }
        }

        Monitor {
            tasks,
            wakers,
            _stop: Some(stop),
        }
    }

    /// Asks the task of `service` to probe now instead of at its next tick.
    ///
    /// A request made while a probe runs starts one more probe right after
    /// it, and requests made meanwhile merge into that one. The next periodic
    /// probe follows one interval after the requested one.
    pub fn probe_now(&self, service: &str) {
        match self.wakers.get(service) {
            Some(waker) => waker.notify_one(),
            None => debug!(service, "probe requested for an unknown service"),
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// State of the probe task of one service.
struct ServiceTask {
    client: Client,
    service: Arc<str>,
    /// Position of the service in the scheduler's slots.
    index: usize,
    spec: HealthSpec,
    /// Due times of the periodic probes, from the scheduler thread.
    tick: Arc<Tick>,
    resets: std::sync::mpsc::Sender<Reset>,
    waker: Arc<Notify>,
    events: mpsc::UnboundedSender<EngineEvent>,
}

impl ServiceTask {
    /// Probes on each tick or wake-up, one probe at a time, until the
    /// receiver of the events is dropped.
    async fn run(self) {
        let name = Arc::clone(&self.service);
        let service = &*name;
        let mut tracker = Tracker::new(&self.spec);
        let request = plain_request(&self.spec);
        debug!(service, url = %redact_url(&self.spec.url), "health probe task started");

        let mut first = Some(time::Instant::now());
        loop {
            let due = match first.take() {
                Some(due) => due,
                None => tokio::select! {
                    due = self.tick.recv() => time::Instant::from_std(due),
                    _ = self.waker.notified() => {
                        let now = time::Instant::now();
                        let _ = self.resets.send(Reset { index: self.index, at: now.into_std() });
                        now
                    }
                    _ = self.events.closed() => break,
                },
            };

            if let Some(observer) = LATENESS_OBSERVER.get() {
                observer(due.elapsed());
            }
            let sample = tokio::select! {
                sample = probe_with(&self.client, &self.spec, request.as_ref()) => sample,
                _ = self.events.closed() => break,
            };

            let previous = tracker.state();
            let state = tracker.record(&sample);
            debug!(
                service,
                outcome = ?sample.outcome,
                status = sample.status,
                latency_ms = u64::try_from(sample.latency.as_millis()).unwrap_or(u64::MAX),
                error = sample.error.as_deref(),
                "health probe completed"
            );
            if state != previous {
                info!(
                    service,
                    from = previous.as_str(),
                    to = state.as_str(),
                    "health state changed"
                );
            }

            let event = EngineEvent::ProbeCompleted {
                service: Arc::clone(&self.service),
                sample,
                state,
            };
            if self.events.send(event).is_err() {
                break;
            }
        }

        debug!(service, "health probe task stopped");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use super::*;
    use crate::config::{RestartSpec, RollbackPolicy, Strategy};
    use crate::engine::health::test_support::{PATIENCE, TestServer, health_spec};
    use crate::engine::health::{HealthState, ProbeOutcome, Sample, client};

    fn service_spec(name: &str, health: HealthSpec) -> ServiceSpec {
        ServiceSpec {
            name: name.to_owned(),
            deploy_dir: "/nonexistent".into(),
            branch: None,
            depends_on: Vec::new(),
            health,
            restart: RestartSpec {
                command: vec!["true".to_owned()],
                timeout: Duration::from_secs(1),
                env: Default::default(),
            },
            rollback: RollbackPolicy {
                strategy: Strategy::Code,
                verify_timeout: Duration::from_secs(1),
                settle: Duration::ZERO,
            },
            backup: None,
        }
    }

    /// Receives events until one for `service` arrives.
    async fn next_probe_of(
        events: &mut mpsc::UnboundedReceiver<EngineEvent>,
        service: &str,
    ) -> (Sample, HealthState) {
        let wait = async {
            loop {
                match events.recv().await {
                    Some(EngineEvent::ProbeCompleted {
                        service: name,
                        sample,
                        state,
                    }) if &*name == service => return (sample, state),
                    Some(_) => continue,
                    None => panic!("event channel closed before a probe of {service}"),
                }
            }
        };
        time::timeout(PATIENCE, wait)
            .await
            .unwrap_or_else(|_| panic!("no probe of {service} within {PATIENCE:?}"))
    }

    #[test]
    fn schedule_sends_due_times_and_follows_resets() {
        let period = Duration::from_millis(200);
        let start = StdInstant::now() + Duration::from_millis(20);
        let first = Arc::new(Tick::default());
        let second = Arc::new(Tick::default());
        let slot = |tick: &Arc<Tick>| Slot {
            period,
            tick: Arc::clone(tick),
            generation: 0,
        };
        let slots = vec![slot(&first), slot(&second)];
        let offset = Duration::from_millis(100);
        let (resets, receiver) = std::sync::mpsc::channel();
        let thread =
            std::thread::spawn(move || schedule(slots, vec![start, start + offset], receiver));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let recv = |tick: &Tick| runtime.block_on(tick.recv());

        assert_eq!(recv(&first), start);
        assert_eq!(recv(&second), start + offset);
        let again = recv(&first);
        assert_eq!(again, start + period);
        assert!(StdInstant::now() >= again);

        // A probe out of schedule moves the next one to a period after it.
        let at = StdInstant::now();
        resets.send(Reset { index: 0, at }).unwrap();
        assert_eq!(recv(&first), at + period);

        drop(resets);
        thread.join().unwrap();
    }

    #[test]
    fn tick_keeps_first_due_time() {
        let tick = Tick::default();
        let early = StdInstant::now();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();

        tick.send(early);
        tick.send(early + Duration::from_secs(1));
        let received = runtime.block_on(tick.recv());
        let pending = *tick.due.lock().unwrap();

        assert_eq!(received, early);
        assert_eq!(pending, None);
    }

    #[test]
    fn short_slice_applies_to_caller() {
        let slice = |text: &str| -> Option<u64> {
            let line = text.lines().find(|line| line.starts_with("se.slice"))?;
            line.split(':').nth(1)?.trim().parse().ok()
        };
        let (before, after) = std::thread::spawn(|| {
            let read = || std::fs::read_to_string("/proc/thread-self/sched").unwrap_or_default();
            let before = read();
            prefer_short_slices().unwrap();
            (before, read())
        })
        .join()
        .unwrap();

        // Kernels without EEVDF or without scheduler debugging show no slice,
        // and there the call must still succeed.
        if slice(&before).is_some() {
            assert_eq!(slice(&after), Some(100_000), "{after}");
        }
    }

    #[tokio::test]
    async fn monitor_reports_each_service() {
        let first = TestServer::start().await;
        let second = TestServer::start().await;
        second.state.set_status(500);
        let services = [
            service_spec("api", health_spec(first.url("/health"))),
            service_spec("worker", health_spec(second.url("/health"))),
        ];
        let (sender, mut events) = mpsc::unbounded_channel();

        let _monitor = Monitor::start(client(), &services, sender);
        let (api, api_state) = next_probe_of(&mut events, "api").await;
        let (worker, _) = next_probe_of(&mut events, "worker").await;

        assert_eq!(api.outcome, ProbeOutcome::Passed);
        assert_eq!(api_state, HealthState::Healthy);
        assert_eq!(worker.outcome, ProbeOutcome::BadStatus);
        assert_eq!(worker.status, Some(500));
    }

    #[tokio::test]
    async fn monitor_reaches_failure_threshold() {
        let server = TestServer::start().await;
        server.state.set_status(503);
        let services = [service_spec("api", health_spec(server.url("/health")))];
        let (sender, mut events) = mpsc::unbounded_channel();

        let _monitor = Monitor::start(client(), &services, sender);
        let mut states = Vec::new();
        for _ in 0..3 {
            let (_, state) = next_probe_of(&mut events, "api").await;
            states.push(state);
        }

        assert_eq!(
            states,
            [
                HealthState::Unknown,
                HealthState::Unknown,
                HealthState::Unhealthy
            ]
        );
    }

    #[tokio::test]
    async fn monitor_probe_now_runs_probe() {
        let server = TestServer::start().await;
        let mut spec = health_spec(server.url("/health"));
        spec.interval = Duration::from_secs(3600);
        let services = [service_spec("api", spec)];
        let (sender, mut events) = mpsc::unbounded_channel();

        let monitor = Monitor::start(client(), &services, sender);
        let (first, _) = next_probe_of(&mut events, "api").await;
        server.state.set_status(500);
        monitor.probe_now("api");
        let (second, state) = next_probe_of(&mut events, "api").await;

        assert_eq!(first.outcome, ProbeOutcome::Passed);
        assert_eq!(second.outcome, ProbeOutcome::BadStatus);
        assert_eq!(state, HealthState::Healthy);
        assert_eq!(server.state.requests.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn monitor_ignores_unknown_service() {
        let (sender, _events) = mpsc::unbounded_channel();
        let monitor = Monitor::start(client(), &[], sender);

        monitor.probe_now("missing");

        assert!(monitor.tasks.is_empty());
    }

    #[tokio::test]
    async fn monitor_never_overlaps_probes() {
        let server = TestServer::start().await;
        server.state.set_delay(Duration::from_millis(100));
        let mut spec = health_spec(server.url("/slow"));
        spec.interval = Duration::from_millis(10);
        let services = [service_spec("api", spec)];
        let (sender, mut events) = mpsc::unbounded_channel();

        let monitor = Monitor::start(client(), &services, sender);
        for _ in 0..4 {
            for _ in 0..5 {
                monitor.probe_now("api");
            }
            next_probe_of(&mut events, "api").await;
        }

        assert_eq!(server.state.max_in_flight("/slow"), 1);
    }

    #[tokio::test]
    async fn monitor_drop_stops_tasks() {
        let server = TestServer::start().await;
        let services = [service_spec("api", health_spec(server.url("/health")))];
        let (sender, mut events) = mpsc::unbounded_channel();

        let monitor = Monitor::start(client(), &services, sender);
        next_probe_of(&mut events, "api").await;
        drop(monitor);
        let drained =
            time::timeout(PATIENCE, async { while events.recv().await.is_some() {} }).await;

        assert!(drained.is_ok(), "event channel still open after drop");
    }

    #[tokio::test]
    async fn monitor_stops_when_receiver_dropped() {
        let server = TestServer::start().await;
        let mut spec = health_spec(server.url("/health"));
        spec.interval = Duration::from_secs(3600);
        let services = [service_spec("api", spec)];
        let (sender, mut events) = mpsc::unbounded_channel();

        let monitor = Monitor::start(client(), &services, sender);
        next_probe_of(&mut events, "api").await;
        drop(events);
        let finished = time::timeout(PATIENCE, async {
            while !monitor.tasks.iter().all(JoinHandle::is_finished) {
                time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;

        assert!(finished.is_ok(), "probe task still running");
    }
}
