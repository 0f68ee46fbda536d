//! The terminal dashboard, in the Elm shape: terminal input and engine
//! events become messages, [`update::update`] folds them into the state in
//! [`app`], and [`view::view`] draws it. Engines run in tasks and report
//! on a channel, so nothing here blocks the event loop.

pub mod app;
pub mod backend;
mod engines;
pub mod keymap;
pub mod panes;
pub mod theme;
pub mod update;
pub mod view;

use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{Event, EventStream, KeyEventKind};
use futures_util::StreamExt;
use ratatui::Terminal;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::config::Config;
use crate::engine::health::{self, Monitor};

use app::App;
use engines::Engines;
use update::{Effect, Msg, update};

/// Shortest time between two frames: at most 30 frames a second.
const FRAME: Duration = Duration::from_millis(33);
/// Shortest time between two frames when nothing but new probe samples
/// that keep each service's health state changed: at most 5 frames a
/// second. Each service is probed about once a
/// second, so a faster redraw shows the same numbers more often, and with
/// a thousand services samples arrive every millisecond.
const SAMPLES_FRAME: Duration = Duration::from_millis(200);
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

    let mut terminal = init_terminal()?;
    let result = event_loop(&mut terminal, config, read_only).await;
    ratatui::restore();

    if let Some(path) = crate::logging::path() {
        eprintln!("log: {}", path.display());
    }
    result
}

/// The dashboard's terminal: frames go to standard output with short
/// escape sequences.
type Screen = Terminal<backend::Compact<std::io::Stdout>>;

/// Switches the terminal to raw mode and the alternate screen, after
/// installing a panic hook that switches it back before the panic message.
fn init_terminal() -> std::io::Result<Screen> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        ratatui::restore();
        hook(info);
    }));
    let terminal = crossterm::terminal::enable_raw_mode()
        .and_then(|()| {
            crossterm::execute!(std::io::stdout(), crossterm::terminal::EnterAlternateScreen)
        })
        .and_then(|()| Terminal::new(backend::Compact::new(std::io::stdout())));
    if terminal.is_err() {
        ratatui::restore();
    }
    terminal
}

async fn event_loop(
    terminal: &mut Screen,
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
    // The monitor's probes and a rollback's health checks run on different
    // runtimes, so each keeps its own idle connections.
    let engines = Engines {
        monitor: Monitor::start(health::client(), &config.services, events_tx.clone()),
        config: Arc::clone(&config),
        client: health::client(),
        events: events_tx,
        messages: messages_tx,
        git: Arc::new(engines::GitThreads::start(VERSIONS_CONCURRENCY)),
        refreshing: engines::reads(config.services.len()),
        sent: engines::sent(config.services.len()),
        refreshing_all: Arc::default(),
        cancel: std::sync::Mutex::new(None),
    };
    // The dashboard starts with the first service selected, and only the
    // selected service needs its whole history.
    engines.refresh_all_versions(0);
    load_all_backups(&engines);
    engines.start(Effect::CheckUnfinished);

    let mut input = EventStream::new();
    let mut frames = tokio::time::interval(FRAME);
    frames.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut refresh = tokio::time::interval(VERSIONS_REFRESH);
    refresh.tick().await;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut hangup = signal(SignalKind::hangup())?;
    let mut redraw = Redraw::new(Instant::now());

    loop {
        let msg = tokio::select! {
            now = frames.tick() => {
                if redraw.due(now) {
                    terminal.draw(|frame| view::view(&app, frame))?;
                    redraw.drawn(now);
                }
                continue;
            }
            input_event = input.next() => match input_event {
                Some(Ok(Event::Key(key))) if key.kind == KeyEventKind::Press => Msg::Key(key),
                Some(Ok(Event::Resize(..))) => {
                    terminal.autoresize()?;
                    redraw.note(Change::Other);
                    continue;
                }
                Some(Ok(_)) => continue,
                Some(Err(error)) => return Err(error.into()),
                None => break,
            },
            Some(event) = events.recv() => Msg::Engine(event),
            Some(msg) = messages.recv() => msg,
            _ = refresh.tick() => {
                engines.refresh_all_versions(app.selected);
                load_all_backups(&engines);
                continue;
            }
            _ = terminate.recv() => break,
            _ = hangup.recv() => break,
        };

        let change = if update::is_quiet_sample(&mut app, &msg) {
            Change::Samples
        } else {
            Change::Other
        };
        for effect in update(&mut app, msg) {
            engines.start(effect);
        }
        redraw.note(change);
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

/// The kind of change since the last frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Change {
    /// New probe samples that keep each service's health state.
    Samples,
    /// Anything else: a key, a resize, a health state that changed, a
    /// run's progress, versions.
    Other,
}

/// Decides when the next frame is drawn: at the next frame tick after any
/// change, except that probe samples that keep each service's health
/// state wait until [`SAMPLES_FRAME`] has passed since the last frame.
#[derive(Debug)]
struct Redraw {
    pending: Option<Change>,
    drawn: Instant,
}

impl Redraw {
    fn new(drawn: Instant) -> Redraw {
        Redraw {
            pending: None,
            drawn,
        }
    }

    fn note(&mut self, change: Change) {
        self.pending = self.pending.max(Some(change));
    }

    fn due(&self, now: Instant) -> bool {
        match self.pending {
            None => false,
            Some(Change::Other) => true,
            Some(Change::Samples) => now.duration_since(self.drawn) >= SAMPLES_FRAME,
        }
    }

    fn drawn(&mut self, now: Instant) {
        self.pending = None;
        self.drawn = now;
    }
}

/// Lists the backups of every service that has a backup table.
fn load_all_backups(engines: &Engines) {
    for spec in &engines.config.services {
        if spec.backup.is_some() {
            engines.load_backups(spec.name.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: Duration = FRAME;

    #[test]
    fn samples_wait_for_samples_frame() {
        let start = Instant::now();
        let mut redraw = Redraw::new(start);
        redraw.note(Change::Samples);

        assert!(!redraw.due(start + TICK));
        assert!(!redraw.due(start + SAMPLES_FRAME - Duration::from_millis(1)));
        assert!(redraw.due(start + SAMPLES_FRAME));
    }

    #[test]
    fn other_change_draws_at_next_tick() {
        let start = Instant::now();
        let mut redraw = Redraw::new(start);
        redraw.note(Change::Samples);
        redraw.note(Change::Other);
        redraw.note(Change::Samples);

        assert!(redraw.due(start + TICK));
    }

    #[test]
    fn drawing_clears_pending_change() {
        let start = Instant::now();
        let mut redraw = Redraw::new(start);
        assert!(!redraw.due(start + SAMPLES_FRAME));

        redraw.note(Change::Other);
        redraw.drawn(start + TICK);
        assert!(!redraw.due(start + SAMPLES_FRAME * 2));

        redraw.note(Change::Samples);
        assert!(!redraw.due(start + TICK + SAMPLES_FRAME - Duration::from_millis(1)));
        assert!(redraw.due(start + TICK + SAMPLES_FRAME));
    }
}
