//! The dashboard's side of the engines: starts the work each effect
//! requests in tasks, and reports back through engine events and messages, so
//! the event loop never waits on git, HTTP, backups or a rollback.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{mpsc, oneshot};

use crate::config::{Config, ServiceSpec};
use crate::engine::backup::{Catalog, Progress};
use crate::engine::coord::audit;
use crate::engine::event::EngineEvent;
use crate::engine::health::{self, Monitor};
use crate::engine::rollback::journal::{RecoveryMode, RunKind};
use crate::engine::rollback::{self, Cancel, CancelHandle, RunOptions, RunOutcome, StepKind};
use crate::engine::versions;

use super::HISTORY_LIMIT;
use super::update::{Effect, Msg};

/// Everything the loop needs to start effects.
pub(super) struct Engines {
    pub config: Arc<Config>,
    pub client: health::Client,
    pub monitor: Monitor,
    pub events: mpsc::UnboundedSender<EngineEvent>,
    pub messages: mpsc::UnboundedSender<Msg>,
    /// The threads that read deploy directories.
    pub git: Arc<GitThreads>,
    /// The versions reads that are queued or running, by service index.
    pub refreshing: Reads,
    /// The versions reads last sent, by service index.
    pub sent: Arc<Sent>,
    /// True while a refresh of every service's versions runs.
    pub refreshing_all: Arc<AtomicBool>,
    /// Cancels the run in progress; replaced when a run starts.
    pub cancel: std::sync::Mutex<Option<CancelHandle>>,
}

impl Engines {
    pub fn start(&self, effect: Effect) {
        match effect {
            Effect::BuildPlan {
                service,
                target,
                backup,
            } => self.build_plan(service, target, backup),
            Effect::BuildUndo(service) => self.build_undo(service),
            Effect::BuildRecovery { service, mode } => self.build_recovery(service, mode),
            Effect::StartRun { plan, kind, reason } => self.start_run(*plan, kind, reason),
            Effect::StartRecovery(recovery) => self.start_recovery(*recovery),
            Effect::CancelRun => {
                if let Ok(slot) = self.cancel.lock()
                    && let Some(handle) = slot.as_ref()
                {
                    handle.cancel();
                }
            }
            Effect::ProbeNow(service) => self.monitor.probe_now(&service),
            Effect::RefreshVersions(service) => {
                let services = &self.config.services;
                if let Some(index) = services.iter().position(|spec| spec.name == service) {
                    self.refresh_versions(index, ReadKind::Requested);
                }
            }
            Effect::CheckUnfinished => self.check_unfinished(),
            Effect::LoadHistory => self.load_history(),
            Effect::LoadBackups(service) => self.load_backups(service),
            Effect::TakeBackup(service) => self.take_backup(service),
            Effect::VerifyBackups(service) => self.verify_backups(service),
        }
    }

    pub fn load_backups(&self, service: String) {
        let Some(spec) = self.config.service(&service) else {
            return;
        };
        if spec.backup.is_none() {
            return;
        }
        let state_dir = self.config.state_dir.clone();
        let messages = self.messages.clone();
        tokio::task::spawn_blocking(move || {
            let result = Catalog::open(&state_dir, &service)
                .and_then(|catalog| catalog.list())
                .map_err(|error| error.to_string());
            let _ = messages.send(Msg::BackupsLoaded { service, result });
        });
    }

    /// Takes a backup with progress in the run pane, then prunes to `keep`.
    fn take_backup(&self, service: String) {
        let Some(spec) = self.config.service(&service).cloned() else {
            return;
        };
        let state_dir = self.config.state_dir.clone();
        let events = self.events.clone();
        tokio::spawn(async move {
            let outcome = backup_now(&spec, &state_dir, &events).await;
            let _ = events.send(EngineEvent::RunFinished {
                service: spec.name.clone(),
                outcome,
            });
        });
    }

    fn verify_backups(&self, service: String) {
        let state_dir = self.config.state_dir.clone();
        let messages = self.messages.clone();
        tokio::spawn(async move {
            let Ok(catalog) = Catalog::open(&state_dir, &service) else {
                return;
            };
            let mut results = Vec::new();
            for manifest in catalog.list().unwrap_or_default() {
                let id = manifest.id.as_str().to_owned();
                let ok = catalog.verify(&id).await.is_ok();
                results.push((id, ok));
            }
            let _ = messages.send(Msg::BackupsVerified { service, results });
        });
    }

    /// Reads the versions of the service at `index` in the configuration,
    /// as much of them as `kind` requests.
    pub(super) fn refresh_versions(&self, index: usize, kind: ReadKind) {
        let Some(pending) = Pending::start(&self.refreshing, index, kind) else {
            return;
        };
        let reader = self.reader();
        tokio::spawn(async move {
            reader.read(pending).await;
        });
    }

    /// Reads the versions of every service, the one at `selected` with its
    /// history, in one task whose four workers take the services in order,
    /// each read running on one of the `git` threads. A periodic refresh of a
    /// thousand services spawns this one task instead of one per service.
    /// While the last refresh still runs, on a slow disk, another is not
    /// started.
    pub fn refresh_all_versions(&self, selected: usize) {
        if self.refreshing_all.swap(true, Ordering::AcqRel) {
            tracing::debug!("versions refresh skipped because the previous one is still running");
            return;
        }
        let running = RoundRunning(Arc::clone(&self.refreshing_all));
        let reader = self.reader();
        let count = self.config.services.len();
        tokio::spawn(async move {
            let _running = running;
            let next = AtomicUsize::new(0);
            let worker = || async {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= count {
                        return;
                    }
                    let kind = if index == selected {
                        ReadKind::History
                    } else {
                        ReadKind::Deployed
                    };
                    let Some(pending) = Pending::start(&reader.reads, index, kind) else {
                        continue;
                    };
                    if !reader.read(pending).await {
                        return;
                    }
                }
            };
            tokio::join!(worker(), worker(), worker(), worker());
            let skipped_total = reader.sent.skipped();
            tracing::debug!(skipped_total, "versions refresh finished");
        });
    }

    fn reader(&self) -> Reader {
        Reader {
            config: Arc::clone(&self.config),
            reads: Arc::clone(&self.refreshing),
            sent: Arc::clone(&self.sent),
            events: self.events.clone(),
            git: Arc::clone(&self.git),
        }
    }

    fn build_plan(&self, service: String, target: String, backup: Option<String>) {
        let Some(spec) = self.config.service(&service).cloned() else {
            return;
        };
        let state_dir = self.config.state_dir.clone();
        let messages = self.messages.clone();
        tokio::task::spawn_blocking(move || {
            let request = rollback::PlanRequest {
                target: Some(target),
                strategy: None,
                backup,
            };
            let result = rollback::plan_rollback(&spec, &state_dir, &request)
                .map(Box::new)
                .map_err(|error| with_hint(&error, error.hint(&spec.name)));
            let _ = messages.send(Msg::PlanBuilt { service, result });
        });
    }

    fn build_undo(&self, service: String) {
        let Some(spec) = self.config.service(&service).cloned() else {
            return;
        };
        let state_dir = self.config.state_dir.clone();
        let messages = self.messages.clone();
        tokio::task::spawn_blocking(move || {
            let result = rollback::plan_undo(&spec, &state_dir)
                .map(Box::new)
                .map_err(|error| with_hint(&error, error.hint(&spec.name)));
            let _ = messages.send(Msg::PlanBuilt { service, result });
        });
    }

    fn build_recovery(&self, service: String, mode: RecoveryMode) {
        let Some(spec) = self.config.service(&service).cloned() else {
            return;
        };
        let state_dir = self.config.state_dir.clone();
        let messages = self.messages.clone();
        tokio::task::spawn_blocking(move || {
            let result = rollback::plan_recovery(&spec, &state_dir, mode)
                .map(Box::new)
                .map_err(|error| with_hint(&error, error.hint()));
            let _ = messages.send(Msg::RecoveryBuilt { service, result });
        });
    }

    /// Returns a fresh cancel token and keeps its handle for `c`.
    fn new_cancel(&self) -> Cancel {
        let (handle, cancel) = Cancel::pair();
        if let Ok(mut slot) = self.cancel.lock() {
            *slot = Some(handle);
        }
        cancel
    }

    fn start_run(&self, plan: rollback::Plan, kind: RunKind, reason: Option<String>) {
        let Some(spec) = self.config.service(&plan.service).cloned() else {
            return;
        };
        let state_dir = self.config.state_dir.clone();
        let client = self.client.clone();
        let events = self.events.clone();
        let options = RunOptions {
            kind,
            reason,
            cancel: self.new_cancel(),
        };
        tokio::spawn(async move {
            rollback::execute(&plan, &spec, &state_dir, &client, &events, options).await;
        });
    }

    fn start_recovery(&self, recovery: rollback::RecoveryPlan) {
        let Some(spec) = self.config.service(&recovery.service).cloned() else {
            return;
        };
        let state_dir = self.config.state_dir.clone();
        let client = self.client.clone();
        let events = self.events.clone();
        let cancel = self.new_cancel();
        tokio::spawn(async move {
            let result =
                rollback::recover(&recovery, &spec, &state_dir, &client, &events, cancel).await;
            // A recovery that could not start sends no outcome; report it here.
            if let Err(error) = result {
                let _ = events.send(EngineEvent::RunFinished {
                    service: spec.name.clone(),
                    outcome: RunOutcome::Refused {
                        reason: with_hint(&error, error.hint()),
                    },
                });
            }
        });
    }

    fn check_unfinished(&self) {
        let config = Arc::clone(&self.config);
        let messages = self.messages.clone();
        tokio::task::spawn_blocking(move || {
            let unfinished = config
                .services
                .iter()
                .filter_map(
                    |spec| match rollback::journal::read(&config.state_dir, &spec.name) {
                        Ok(Some(state)) => Some((spec.name.clone(), state.summary())),
                        Ok(None) => None,
                        Err(error) => Some((spec.name.clone(), error.to_string())),
                    },
                )
                .collect();
            let _ = messages.send(Msg::UnfinishedFound(unfinished));
        });
    }

    fn load_history(&self) {
        let state_dir = self.config.state_dir.clone();
        let messages = self.messages.clone();
        tokio::task::spawn_blocking(move || match audit::read(&state_dir, None) {
            Ok(entries) => {
                let _ = messages.send(Msg::HistoryLoaded(entries));
            }
            Err(error) => tracing::warn!(%error, "cannot read the audit log"),
        });
    }
}

/// Takes a backup of `spec` now, reporting it as a one-step run, and prunes
/// the catalog to `keep`, sparing backups an unfinished run needs.
async fn backup_now(
    spec: &ServiceSpec,
    state_dir: &std::path::Path,
    events: &mpsc::UnboundedSender<EngineEvent>,
) -> RunOutcome {
    let service = spec.name.clone();
    let send = |event| {
        let _ = events.send(event);
    };
    send(EngineEvent::StepStarted {
        service: service.clone(),
        step: StepKind::SafetyBackup,
        index: 0,
        total: 1,
    });
    let result = take_and_prune(spec, state_dir, events).await;
    let (ok, detail) = match &result {
        Ok(detail) => (true, detail.clone()),
        Err(error) => (false, error.clone()),
    };
    send(EngineEvent::StepFinished {
        service,
        step: StepKind::SafetyBackup,
        ok,
        detail,
    });
    match result {
        Ok(_) => RunOutcome::Succeeded,
        Err(reason) => RunOutcome::Refused { reason },
    }
}

async fn take_and_prune(
    spec: &ServiceSpec,
    state_dir: &std::path::Path,
    events: &mpsc::UnboundedSender<EngineEvent>,
) -> Result<String, String> {
    let backup = spec
        .backup
        .as_ref()
        .ok_or_else(|| format!("`{}` has no backup table", spec.name))?;
    let catalog = Catalog::open(state_dir, &spec.name).map_err(|error| error.to_string())?;
    let head = versions::head(&spec.deploy_dir).ok();
    let progress_events = events.clone();
    let service = spec.name.clone();
    let progress = move |progress: Progress| {
        if let Progress::ToolOutput(line) = progress {
            let _ = progress_events.send(EngineEvent::StepOutput {
                service: service.clone(),
                line,
            });
        }
    };
    let manifest = catalog
        .create(backup, head.as_deref(), progress)
        .await
        .map_err(|error| with_hint(&error, error.hint()))?;

    let protected = rollback::journal::read(state_dir, &spec.name)
        .ok()
        .flatten()
        .map(|state| state.backup_ids())
        .unwrap_or_default();
    let pruned = catalog
        .prune(backup.keep, &protected)
        .await
        .map_err(|error| error.to_string())?;
    Ok(format!(
        "backup {} ({} bytes); {} older removed by keep = {}",
        manifest.id.as_str(),
        manifest.size,
        pruned.len(),
        backup.keep
    ))
}

/// How much of a service's versions a read takes, and whether its result
/// is sent when it equals the last one sent. Two requests merge into the
/// greater of the two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum ReadKind {
    /// The deployed entry alone, for the periodic refresh of a service
    /// that is not selected. Sent only when it changed.
    Deployed,
    /// `HISTORY_LIMIT` entries of history, for the periodic refresh of the
    /// selected service. Sent only when it changed.
    History,
    /// `HISTORY_LIMIT` entries of history that the dashboard requested,
    /// as when the selection moves to a service whose history it dropped
    /// or after a checkout. Always sent.
    Requested,
}

impl ReadKind {
    fn full(self) -> bool {
        self != ReadKind::Deployed
    }
}

/// The versions reads that are queued or running, by the index of their
/// service in the configuration. An entry is `None` while no read runs.
/// Otherwise it contains the refresh requested since the read began, if
/// any. That read then runs once more instead of a second read queueing,
/// so reads never pile up behind a slow disk and a refresh after a
/// rollback is never lost.
pub(super) type Reads = Arc<Mutex<Vec<Option<Option<ReadKind>>>>>;

/// Returns the table of pending reads for `services` services, none pending.
pub(super) fn reads(services: usize) -> Reads {
    Arc::new(Mutex::new(vec![None; services]))
}

/// Record of the versions read last sent for each service, by index in
/// the configuration, and of the reads that a stamp made unnecessary.
///
/// A periodic read that finds the same as the one last sent sends
/// nothing, and its result is freed on the git thread that built it.
/// The periodic refresh reads every service every 15 s, and most reads
/// find nothing new: sending them would only move a thousand results to
/// the dashboard's thread, to be compared with what it shows and freed
/// there. The dashboard shows what was last sent, except that it drops
/// the history of a service that is no longer selected, so reading that
/// history again is [`ReadKind::Requested`] and always sent.
///
/// Before a periodic read, the git thread stamps the deploy directory
/// ([`versions::stamp`]). When the stamp equals the one taken before the
/// last read, the directory did not change since, and the read is skipped.
/// A libgit2 read made about a thousand allocations under heaptrack. The
/// first read of a service takes no stamp, so skipping starts with the
/// third round.
#[derive(Debug)]
pub(super) struct Sent {
    /// `None` when the last read failed or none was sent yet.
    last: Mutex<Vec<Option<LastRead>>>,
    /// Periodic reads skipped because the stamp did not change.
    skipped: AtomicUsize,
    /// Reads left, by service index, before the next attempt to stamp a
    /// directory that gave [`versions::NoStamp::Unsupported`].
    pauses: Mutex<Vec<u8>>,
}

/// Number of reads that go without a stamp after an unsupported one: 20
/// rounds of 15 s. Walking 20,000 entries each round costs more than the
/// read it could save.
const STAMP_PAUSE: u8 = 20;

/// The last read of one service that the dashboard shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LastRead {
    /// 64-bit hash of the read and of whether it was whole.
    read: u64,
    /// Whether it held the whole history.
    full: bool,
    /// Stamp of the deploy directory taken before that read, if any.
    stamp: Option<u64>,
}

impl Sent {
    fn last(&self) -> std::sync::MutexGuard<'_, Vec<Option<LastRead>>> {
        self.last.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Tells whether a periodic read of `kind` of the service at `index`
    /// can be skipped, and counts each skip. It can when `stamp` equals the
    /// stamp taken before the last read shown and that read was of the same
    /// kind.
    fn unchanged(&self, index: usize, kind: ReadKind, stamp: Option<u64>) -> bool {
        if kind == ReadKind::Requested || stamp.is_none() {
            return false;
        }
        let same = self
            .last()
            .get(index)
            .copied()
            .flatten()
            .is_some_and(|last| last.full == kind.full() && last.stamp == stamp);
        if same {
            self.skipped.fetch_add(1, Ordering::Relaxed);
        }
        same
    }

    /// Stamps the deploy directory `dir` of the service at `index`. Returns
    /// `None` without a stamp when no read of it is shown yet, or when its
    /// directory was unsupported within the last [`STAMP_PAUSE`] reads.
    fn stamp(&self, index: usize, dir: &std::path::Path) -> Option<u64> {
        if !self.last().get(index).is_some_and(Option::is_some) {
            return None;
        }
        {
            let mut pauses = self.pauses.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(pause) = pauses.get_mut(index)
                && *pause > 0
            {
                *pause -= 1;
                return None;
            }
        }
        match versions::stamp(dir) {
            Ok(stamp) => Some(stamp),
            Err(versions::NoStamp::Unsettled) => None,
            Err(versions::NoStamp::Unsupported) => {
                let mut pauses = self.pauses.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(pause) = pauses.get_mut(index) {
                    *pause = STAMP_PAUSE;
                }
                None
            }
        }
    }

    /// Periodic reads skipped so far.
    pub(super) fn skipped(&self) -> usize {
        self.skipped.load(Ordering::Relaxed)
    }
}

/// Returns the table of sent reads for `services` services, none sent.
pub(super) fn sent(services: usize) -> Arc<Sent> {
    Arc::new(Sent {
        last: Mutex::new(vec![None; services]),
        skipped: AtomicUsize::new(0),
        pauses: Mutex::new(vec![0; services]),
    })
}

/// Returns `result` unless it is a periodic read of the service at `index`
/// equal to the one last sent, which the dashboard already shows, and
/// records what is shown with the `stamp` taken before the read.
///
/// Reads are compared by a 64-bit hash, so a change that keeps the hash
/// is missed until the next change, with odds of 1 in 2^64.
fn news<E>(
    sent: &Sent,
    index: usize,
    kind: ReadKind,
    stamp: Option<u64>,
    result: Result<versions::VersionInfo, E>,
) -> Option<Result<versions::VersionInfo, E>> {
    // A whole history and a deployed entry alone never compare equal, even
    // for a repository of one commit, because the dashboard stores them
    // differently.
    let read = result.as_ref().ok().map(|info| {
        let mut hasher = std::hash::DefaultHasher::new();
        kind.full().hash(&mut hasher);
        info.hash(&mut hasher);
        LastRead {
            read: hasher.finish(),
            full: kind.full(),
            stamp,
        }
    });
    let mut table = sent.last();
    let Some(last) = table.get_mut(index) else {
        return Some(result);
    };
    let same = matches!((*last, read), (Some(last), Some(new)) if last.read == new.read);
    *last = read;
    if kind != ReadKind::Requested && same {
        return None;
    }
    Some(result)
}

/// The parts of the engines that a versions read uses, shared by the
/// reading tasks so that none copies a service's configuration.
struct Reader {
    config: Arc<Config>,
    reads: Reads,
    sent: Arc<Sent>,
    events: mpsc::UnboundedSender<EngineEvent>,
    git: Arc<GitThreads>,
}

impl Reader {
    /// Reads the versions of the service of `pending` on a git thread,
    /// once more for each refresh requested meanwhile, and sends each
    /// result as an event. Returns `false` when the receiver of the events
    /// is gone.
    async fn read(&self, mut pending: Pending) -> bool {
        let index = pending.index;
        let mut kind = pending.kind;
        loop {
            let config = Arc::clone(&self.config);
            let sent = Arc::clone(&self.sent);
            let read = self
                .git
                .run(move || {
                    let spec = &config.services[index];
                    let (dir, branch) = (&spec.deploy_dir, spec.branch.as_deref());
                    // Taken before the read, so a change during the read
                    // makes the next stamp differ.
                    let stamp = sent.stamp(index, dir);
                    if sent.unchanged(index, kind, stamp) {
                        return None;
                    }
                    let result = if kind.full() {
                        versions::read(dir, branch, HISTORY_LIMIT)
                    } else {
                        versions::read_deployed(dir, branch)
                    };
                    news(&sent, index, kind, stamp, result)
                })
                .await;
            let service = self.config.services[index].name.clone();
            let event = match read {
                Ok(None) => None,
                Ok(Some(Ok(info))) => Some(EngineEvent::VersionsLoaded {
                    service,
                    info,
                    complete: kind.full(),
                }),
                Ok(Some(Err(error))) => Some(EngineEvent::VersionsFailed {
                    service,
                    error: error.to_string(),
                }),
                Err(error) => Some(EngineEvent::VersionsFailed {
                    service,
                    error: format!("reading versions failed: {error}"),
                }),
            };
            if let Some(event) = event
                && self.events.send(event).is_err()
            {
                return false;
            }
            match pending.repeat() {
                Some(again) => kind = again,
                None => return true,
            }
        }
    }
}

/// Work queued for the git threads.
type GitJob = Box<dyn FnOnce() + Send>;

/// Threads that read deploy directories, started with the dashboard and
/// kept until it ends, so the 15 s refresh reuses them.
///
/// tokio's blocking threads stop after 10 s without work, so each round of
/// the refresh started new ones. tokio starts another blocking thread when
/// work is queued before an earlier thread is idle again, which gave about
/// 20 new threads per round with 1,000 services.
pub(super) struct GitThreads {
    jobs: std::sync::mpsc::Sender<GitJob>,
    /// Number of threads that started. With none, work goes to tokio's
    /// blocking threads instead.
    started: usize,
}

impl GitThreads {
    /// Starts `count` threads that take work in the order it was queued.
    pub(super) fn start(count: usize) -> GitThreads {
        let (jobs, queue) = std::sync::mpsc::channel::<GitJob>();
        let queue = Arc::new(Mutex::new(queue));
        let mut started = 0;
        for number in 0..count {
            let queue = Arc::clone(&queue);
            let spawned = std::thread::Builder::new()
                .name(format!("versions-{number}"))
                .spawn(move || run_git_jobs(&queue));
            match spawned {
                Ok(_) => started += 1,
                Err(error) => tracing::error!(%error, number, "cannot start a versions thread"),
            }
        }
        GitThreads { jobs, started }
    }

    /// Runs `work` on one of the threads and returns its result, or the
    /// panic message when it panicked.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, String> {
        if self.started == 0 {
            let joined = tokio::task::spawn_blocking(work).await;
            return joined.map_err(|error| error.to_string());
        }
        let (done, result) = oneshot::channel();
        let job: GitJob = Box::new(move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
            let _ = done.send(outcome.map_err(|panic| panic_text(panic.as_ref())));
        });
        if self.jobs.send(job).is_err() {
            return Err("the versions threads stopped".to_owned());
        }
        result
            .await
            .unwrap_or_else(|_| Err("the versions thread stopped during the read".to_owned()))
    }
}

/// Runs the work of `queue` until every sender is gone.
fn run_git_jobs(queue: &Mutex<std::sync::mpsc::Receiver<GitJob>>) {
    loop {
        let job = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(job) = job else {
            return;
        };
        job();
    }
}

/// Returns the message of a caught panic.
fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    let message = panic
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_owned());
    format!("panicked: {message}")
}

/// The flag of a running refresh of every service, cleared when dropped.
struct RoundRunning(Arc<AtomicBool>);

impl Drop for RoundRunning {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// A service's entry among the pending reads, cleared when dropped.
struct Pending {
    reads: Reads,
    index: usize,
    /// The kind of the first read.
    kind: ReadKind,
    /// Set once [`Pending::repeat`] cleared the entry itself.
    finished: bool,
}

impl Pending {
    /// Marks a read of the service at `index` as pending. Returns `None`
    /// when one already is, after asking it to read once more, as the
    /// greater of this and any earlier request, and when `index` is past
    /// the last service.
    fn start(reads: &Reads, index: usize, kind: ReadKind) -> Option<Pending> {
        let mut pending = reads.lock().unwrap_or_else(|poison| poison.into_inner());
        let entry = pending.get_mut(index)?;
        if let Some(again) = entry {
            *again = Some(again.map_or(kind, |earlier| earlier.max(kind)));
            return None;
        }
        *entry = Some(None);
        Some(Pending {
            reads: Arc::clone(reads),
            index,
            kind,
            finished: false,
        })
    }

    /// Returns the refresh requested since the read began, and clears it.
    /// Otherwise clears the entry under the same lock, so a refresh
    /// requested from then on starts a new read.
    fn repeat(&mut self) -> Option<ReadKind> {
        let mut pending = self
            .reads
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let entry = &mut pending[self.index];
        if let Some(again) = entry
            && let Some(kind) = again.take()
        {
            return Some(kind);
        }
        *entry = None;
        self.finished = true;
        None
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.finished {
            let mut pending = self
                .reads
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            pending[self.index] = None;
        }
    }
}

/// Joins an error and its hint into one line for the footer.
fn with_hint(error: &dyn std::fmt::Display, hint: Option<String>) -> String {
    match hint {
        Some(hint) => format!("{error} ({hint})"),
        None => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::rollback::test_support;

    fn engines(config: Config, events: mpsc::UnboundedSender<EngineEvent>) -> Engines {
        let (messages, _) = mpsc::unbounded_channel();
        Engines {
            monitor: Monitor::start(health::client(), &[], events.clone()),
            client: health::client(),
            refreshing: reads(config.services.len()),
            sent: sent(config.services.len()),
            refreshing_all: Arc::default(),
            config: Arc::new(config),
            events,
            messages,
            git: Arc::new(GitThreads::start(2)),
            cancel: std::sync::Mutex::new(None),
        }
    }

    /// Returns a read-only configuration in `dir` of services named and
    /// deployed as `services` lists them.
    fn config(dir: &std::path::Path, services: &[(&str, &std::path::Path)]) -> Config {
        let service = |(name, deploy_dir): &(&str, &std::path::Path)| ServiceSpec {
            name: (*name).to_owned(),
            deploy_dir: deploy_dir.to_path_buf(),
            ..test_support::spec(deploy_dir)
        };
        Config {
            path: dir.join("services.toml"),
            state_dir: dir.join("state"),
            read_only: true,
            services: services.iter().map(service).collect(),
        }
    }

    /// Receives the versions events until the channel closes, each as a
    /// line that names the service and what its read found.
    async fn received(events: &mut mpsc::UnboundedReceiver<EngineEvent>) -> Vec<String> {
        let mut seen = Vec::new();
        while let Some(event) = events.recv().await {
            seen.push(match event {
                EngineEvent::VersionsLoaded {
                    service,
                    info,
                    complete,
                } => format!(
                    "{service} {} entries, {} dirty, complete {complete}",
                    info.history.len(),
                    info.dirty.len()
                ),
                EngineEvent::VersionsFailed { service, .. } => format!("{service} failed"),
                other => panic!("unexpected event {other:?}"),
            });
        }
        seen
    }

    #[tokio::test]
    async fn refresh_of_all_reads_each_service_once() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        std::fs::create_dir(&repo).unwrap();
        test_support::repo(&repo, &["v1", "v2", "v3"]);
        let missing = dir.path().join("missing");
        let config = config(
            dir.path(),
            &[
                ("alpha", &repo),
                ("beta", &repo),
                ("gamma", &missing),
                ("delta", &repo),
                ("epsilon", &repo),
            ],
        );
        let (sender, mut events) = mpsc::unbounded_channel();
        let engines = engines(config, sender);

        engines.refresh_all_versions(1);
        // The first refresh is still running, so this one is skipped.
        engines.refresh_all_versions(1);
        let running = Arc::clone(&engines.refreshing_all);
        // The round's task owns the last sender, so the channel closes
        // once every read has reported.
        drop(engines);
        let mut seen = received(&mut events).await;
        seen.sort();
        let expected = [
            "alpha 1 entries, 0 dirty, complete false",
            "beta 3 entries, 0 dirty, complete true",
            "delta 1 entries, 0 dirty, complete false",
            "epsilon 1 entries, 0 dirty, complete false",
            "gamma failed",
        ];
        assert_eq!(seen, expected);
        assert!(!running.load(Ordering::Acquire));
    }

    /// Waits until no versions read is queued or running.
    async fn reads_settled(engines: &Engines) {
        for _ in 0..2_000 {
            let idle = engines
                .refreshing
                .lock()
                .unwrap()
                .iter()
                .all(Option::is_none);
            if idle {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        panic!("versions reads still running after 10 s");
    }

    #[tokio::test]
    async fn periodic_reads_send_only_changes() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        std::fs::create_dir(&repo).unwrap();
        test_support::repo(&repo, &["v1", "v2"]);
        let later = dir.path().join("later");
        let config = config(dir.path(), &[("alpha", &repo), ("beta", &later)]);
        let (sender, mut events) = mpsc::unbounded_channel();
        let engines = engines(config, sender);
        const ALPHA: usize = 0;
        const BETA: usize = 1;

        // Each step waits for its reads, so the events arrive in step order.
        use ReadKind::{Deployed, History, Requested};
        let steps: [(usize, ReadKind); 12] = [
            (ALPHA, Deployed),
            (ALPHA, Deployed),  // unchanged: nothing sent
            (BETA, Deployed),   // no deploy directory yet: failed
            (BETA, Deployed),   // a failure is sent again
            (ALPHA, Deployed),  // after the untracked file: sent
            (ALPHA, Requested), // a requested history is always sent
            (ALPHA, Requested), // even when it did not change
            (ALPHA, History),   // unchanged since the request: nothing sent
            (ALPHA, Deployed),  // the last one sent was whole: sent
            (ALPHA, Deployed),  // unchanged: nothing sent
            (ALPHA, History),   // the last one sent was the deployed entry: sent
            (BETA, Deployed),   // the directory now exists: sent
        ];
        for (step, (index, kind)) in steps.into_iter().enumerate() {
            if step == 4 {
                std::fs::write(repo.join("untracked.txt"), "x").unwrap();
                std::fs::create_dir(&later).unwrap();
                test_support::repo(&later, &["b1"]);
            }
            engines.refresh_versions(index, kind);
            reads_settled(&engines).await;
        }
        drop(engines);

        let seen = received(&mut events).await;
        let expected = [
            "alpha 1 entries, 0 dirty, complete false",
            "beta failed",
            "beta failed",
            "alpha 1 entries, 1 dirty, complete false",
            "alpha 2 entries, 1 dirty, complete true",
            "alpha 2 entries, 1 dirty, complete true",
            "alpha 1 entries, 1 dirty, complete false",
            "alpha 2 entries, 1 dirty, complete true",
            "beta 1 entries, 0 dirty, complete false",
        ];
        assert_eq!(seen, expected);
    }

    #[test]
    fn news_skips_unchanged_periodic_reads() {
        let sent = sent(1);
        let info = |short: &str| versions::VersionInfo {
            commit: format!("{short}000"),
            short: short.to_owned(),
            describe: None,
            branch: Some("main".to_owned()),
            history_branch: Some("main".to_owned()),
            dirty: Vec::new(),
            history: Vec::new(),
        };
        let read = |short: &str| Ok::<_, String>(info(short));

        use ReadKind::{Deployed, History, Requested};
        assert!(news(&sent, 0, Deployed, None, read("aaa")).is_some());
        assert!(news(&sent, 0, Deployed, None, read("aaa")).is_none());
        assert!(news(&sent, 0, Deployed, None, read("bbb")).is_some());
        // The same read as a whole history is stored differently.
        assert!(news(&sent, 0, History, None, read("bbb")).is_some());
        assert!(news(&sent, 0, History, Some(7), read("bbb")).is_none());
        // An unchanged read still records the stamp taken before it.
        assert_eq!(sent.last()[0].unwrap().stamp, Some(7));
        assert!(news(&sent, 0, Requested, None, read("bbb")).is_some());
        assert!(news(&sent, 0, Deployed, None, read("bbb")).is_some());
        assert!(news(&sent, 0, Deployed, Some(8), Err("gone".to_owned())).is_some());
        assert_eq!(sent.last()[0], None);
        assert!(news(&sent, 0, Deployed, None, read("bbb")).is_some());
        // An index past the table is sent and not recorded.
        assert!(news(&sent, 5, Deployed, None, read("bbb")).is_some());
        assert_eq!(sent.last().len(), 1);
    }

    #[test]
    fn unchanged_needs_same_stamp_and_kind() {
        let sent = sent(2);
        let info = versions::VersionInfo {
            commit: "aaa000".to_owned(),
            short: "aaa".to_owned(),
            describe: None,
            branch: None,
            history_branch: None,
            dirty: Vec::new(),
            history: Vec::new(),
        };
        use ReadKind::{Deployed, History, Requested};
        assert!(news(&sent, 0, Deployed, Some(1), Ok::<_, String>(info)).is_some());

        assert!(sent.unchanged(0, Deployed, Some(1)));
        assert!(!sent.unchanged(0, Deployed, Some(2)));
        assert!(!sent.unchanged(0, Deployed, None));
        assert!(!sent.unchanged(0, History, Some(1)));
        assert!(!sent.unchanged(0, Requested, Some(1)));
        assert!(!sent.unchanged(1, Deployed, Some(1)));
        assert!(!sent.unchanged(2, Deployed, Some(1)));
        assert_eq!(sent.skipped(), 1);
    }

    #[test]
    fn unsupported_directory_pauses_stamps() {
        let dir = tempfile::tempdir().unwrap();
        // A linked work tree's `.git` is a file.
        std::fs::write(dir.path().join(".git"), "gitdir: /nowhere\n").unwrap();
        let sent = sent(1);
        let pause = || sent.pauses.lock().unwrap()[0];

        // Without a read shown, no stamp is tried.
        assert_eq!(sent.stamp(0, dir.path()), None);
        assert_eq!(pause(), 0);
        sent.last.lock().unwrap()[0] = Some(LastRead {
            read: 1,
            full: false,
            stamp: None,
        });
        assert_eq!(sent.stamp(0, dir.path()), None);
        assert_eq!(pause(), STAMP_PAUSE);
        assert_eq!(sent.stamp(0, dir.path()), None);
        assert_eq!(pause(), STAMP_PAUSE - 1);
    }

    #[tokio::test]
    async fn refresh_skips_unchanged_directories() {
        let dir = tempfile::tempdir().unwrap();
        let (alpha, beta) = (dir.path().join("alpha"), dir.path().join("beta"));
        for repo in [&alpha, &beta] {
            std::fs::create_dir(repo).unwrap();
            test_support::repo(repo, &["v1", "v2"]);
        }
        let config = config(dir.path(), &[("alpha", &alpha), ("beta", &beta)]);
        let (sender, mut events) = mpsc::unbounded_channel();
        let engines = engines(config, sender);
        // A stamp trusts only entries older than the settle time.
        tokio::time::sleep(versions::STAMP_SETTLE_TIME + std::time::Duration::from_millis(100))
            .await;

        use ReadKind::{Deployed, Requested};
        // The first round takes no stamps, the second stores them, the
        // third skips both reads.
        for round in 1..=3 {
            for index in [0, 1] {
                engines.refresh_versions(index, Deployed);
                reads_settled(&engines).await;
            }
            assert_eq!(engines.sent.skipped(), if round < 3 { 0 } else { 2 });
        }

        std::fs::write(beta.join("untracked.txt"), "x").unwrap();
        for (index, kind) in [(0, Deployed), (1, Deployed), (0, Requested)] {
            engines.refresh_versions(index, kind);
            reads_settled(&engines).await;
        }
        assert_eq!(engines.sent.skipped(), 3);
        drop(engines);

        let seen = received(&mut events).await;
        let expected = [
            "alpha 1 entries, 0 dirty, complete false",
            "beta 1 entries, 0 dirty, complete false",
            "beta 1 entries, 1 dirty, complete false",
            "alpha 2 entries, 0 dirty, complete true",
        ];
        assert_eq!(seen, expected);
    }

    #[tokio::test]
    async fn git_threads_run_work_and_report_panics() {
        let threads = GitThreads::start(2);

        assert_eq!(threads.run(|| 6 * 7).await, Ok(42));
        let panicked = threads.run(|| -> u32 { panic!("bad repository") }).await;
        assert_eq!(panicked, Err("panicked: bad repository".to_owned()));
        let mut names = std::collections::BTreeSet::new();
        for _ in 0..10 {
            let name = threads.run(|| std::thread::current().name().map(str::to_owned));
            names.insert(name.await.unwrap().unwrap());
        }
        // The same two threads ran every read, the one that panicked too.
        let started = ["versions-0", "versions-1"].map(str::to_owned);
        assert!(names.iter().all(|name| started.contains(name)), "{names:?}");
    }

    #[test]
    fn pending_read_absorbs_refreshes_and_repeats_once() {
        const WEB: usize = 0;
        const DB: usize = 1;
        use ReadKind::{Deployed, History, Requested};
        let services = reads(2);
        let mut first = Pending::start(&services, WEB, Deployed).unwrap();

        assert!(Pending::start(&services, WEB, Requested).is_none());
        assert!(Pending::start(&services, WEB, History).is_none());
        assert!(Pending::start(&services, DB, Deployed).is_some());
        assert!(Pending::start(&services, 2, Deployed).is_none());
        // The repeat reads what the greatest request asked for.
        assert_eq!(first.repeat(), Some(Requested));
        assert_eq!(first.repeat(), None);
        // The entry is gone before `first` is dropped, so a new read starts
        // and dropping `first` leaves the new entry alone.
        let mut second = Pending::start(&services, WEB, Deployed).unwrap();
        drop(first);
        assert!(Pending::start(&services, WEB, Deployed).is_none());
        assert_eq!(second.repeat(), Some(Deployed));
        drop(second);
        assert!(Pending::start(&services, WEB, Deployed).is_some());
    }
}
