//! The terminal dashboard, in the Elm shape: terminal input and engine
//! events become messages, [`update::update`] folds them into the state in
//! [`app`], and [`view::view`] draws it. Engines run in tasks and report
//! on a channel, so nothing here blocks the event loop.

pub mod app;
pub mod keymap;
pub mod panes;
pub mod theme;
pub mod update;
pub mod view;

use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{Event, EventStream, KeyEventKind};
use futures_util::StreamExt;
use ratatui::DefaultTerminal;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Semaphore, mpsc};

use crate::config::{Config, ServiceSpec};
use crate::engine::coord::audit;
use crate::engine::event::EngineEvent;
use crate::engine::health::{self, Monitor};
use crate::engine::rollback::journal::{RecoveryMode, RunKind};
use crate::engine::rollback::{self, Cancel, CancelHandle, RunOptions, RunOutcome};
use crate::engine::versions;

use app::App;
use update::{Effect, Msg, update};

/// Shortest time between two frames: at most 30 frames a second.
const FRAME: Duration = Duration::from_millis(33);
/// Versions are read again this often, to catch deploys made elsewhere.
const VERSIONS_REFRESH: Duration = Duration::from_secs(15);
/// Deploy directories read at once.
const VERSIONS_CONCURRENCY: usize = 4;
/// History entries read per service.
const HISTORY_LIMIT: usize = 50;

/// Opens the dashboard on `config` and runs it until the user quits. The
/// terminal is restored on every way out, a panic included.
pub async fn run(config: Config, read_only: bool) -> color_eyre::Result<()> {
    crate::logging::init(&config.state_dir);
    tracing::info!(config = %config.path.display(), services = config.services.len(), "dashboard started");

    // ratatui's init installs a panic hook that restores the terminal first.
    let mut terminal = ratatui::try_init()?;
    let result = event_loop(&mut terminal, config, read_only).await;
    ratatui::restore();

    if let Some(path) = crate::logging::path() {
        eprintln!("log: {}", path.display());
    }
    result
}

/// Everything the loop needs to start effects.
struct Engines {
    config: Arc<Config>,
    client: reqwest::Client,
    monitor: Monitor,
    events: mpsc::UnboundedSender<EngineEvent>,
    messages: mpsc::UnboundedSender<Msg>,
    git_slots: Arc<Semaphore>,
    /// Cancels the run in progress; replaced when a run starts.
    cancel: std::sync::Mutex<Option<CancelHandle>>,
}

async fn event_loop(
    terminal: &mut DefaultTerminal,
    config: Config,
    read_only: bool,
) -> color_eyre::Result<()> {
    let config = Arc::new(config);
    let mut app = App::new(&config);
    app.read_only = read_only || config.read_only;
    // The first frame shows every service as unknown before any engine reports.
    terminal.draw(|frame| view::view(&app, frame))?;

    let (events_tx, mut events) = mpsc::unbounded_channel();
    let (messages_tx, mut messages) = mpsc::unbounded_channel();
    let client = health::client();
    let engines = Engines {
        monitor: Monitor::start(client.clone(), &config.services, events_tx.clone()),
        config: Arc::clone(&config),
        client,
        events: events_tx,
        messages: messages_tx,
        git_slots: Arc::new(Semaphore::new(VERSIONS_CONCURRENCY)),
        cancel: std::sync::Mutex::new(None),
    };
    for spec in &config.services {
        engines.refresh_versions(spec);
    }
    engines.start(Effect::CheckUnfinished);

    let mut input = EventStream::new();
    let mut frames = tokio::time::interval(FRAME);
    frames.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut refresh = tokio::time::interval(VERSIONS_REFRESH);
    refresh.tick().await;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut hangup = signal(SignalKind::hangup())?;
    let mut changed = false;

    loop {
        let msg = tokio::select! {
            _ = frames.tick() => {
                if changed {
                    terminal.draw(|frame| view::view(&app, frame))?;
                    changed = false;
                }
                continue;
            }
            input_event = input.next() => match input_event {
                Some(Ok(Event::Key(key))) if key.kind == KeyEventKind::Press => Msg::Key(key),
                Some(Ok(Event::Resize(..))) => {
                    terminal.autoresize()?;
                    changed = true;
                    continue;
                }
                Some(Ok(_)) => continue,
                Some(Err(error)) => return Err(error.into()),
                None => break,
            },
            Some(event) = events.recv() => Msg::Engine(event),
            Some(msg) = messages.recv() => msg,
            _ = refresh.tick() => {
                for spec in &config.services {
                    engines.refresh_versions(spec);
                }
                continue;
            }
            _ = terminate.recv() => break,
            _ = hangup.recv() => break,
        };

        for effect in update(&mut app, msg) {
            engines.start(effect);
        }
        changed = true;
        if app.should_quit {
            if let Some(run) = app.running() {
                tracing::warn!(
                    service = %run.service,
                    "dashboard quit during a run; it stops without a revert and \
                     `rewind recover` resumes or aborts it"
                );
            }
            break;
        }
    }
    tracing::info!("dashboard stopped");
    Ok(())
}

impl Engines {
    fn start(&self, effect: Effect) {
        match effect {
            Effect::BuildPlan { service, target } => self.build_plan(service, target),
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
                if let Some(spec) = self.config.service(&service) {
                    self.refresh_versions(spec);
                }
            }
            Effect::CheckUnfinished => self.check_unfinished(),
            Effect::LoadHistory => self.load_history(),
        }
    }

    fn refresh_versions(&self, spec: &ServiceSpec) {
        let spec = spec.clone();
        let events = self.events.clone();
        let slots = Arc::clone(&self.git_slots);
        tokio::spawn(async move {
            let Ok(_slot) = slots.acquire_owned().await else {
                return;
            };
            let name = spec.name.clone();
            let read = tokio::task::spawn_blocking(move || {
                versions::read(&spec.deploy_dir, spec.branch.as_deref(), HISTORY_LIMIT)
            })
            .await;
            let event = match read {
                Ok(Ok(info)) => EngineEvent::VersionsLoaded {
                    service: name,
                    info,
                },
                Ok(Err(error)) => EngineEvent::VersionsFailed {
                    service: name,
                    error: error.to_string(),
                },
                Err(join_error) => EngineEvent::VersionsFailed {
                    service: name,
                    error: format!("reading versions panicked: {join_error}"),
                },
            };
            let _ = events.send(event);
        });
    }

    fn build_plan(&self, service: String, target: String) {
        let Some(spec) = self.config.service(&service).cloned() else {
            return;
        };
        let messages = self.messages.clone();
        tokio::task::spawn_blocking(move || {
            let result = rollback::build_plan(&spec, &target)
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

/// Joins an error and its hint into one line for the footer.
fn with_hint(error: &dyn std::fmt::Display, hint: Option<String>) -> String {
    match hint {
        Some(hint) => format!("{error} ({hint})"),
        None => error.to_string(),
    }
}
