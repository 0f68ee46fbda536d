//! `update`: the one place that changes the dashboard state. It takes a
//! message (a key, an engine event, a finished plan) and returns the
//! effects the event loop must start, so it never blocks and tests can
//! drive it without a terminal.

use crossterm::event::{Event, KeyEvent};
use tui_input::backend::crossterm::EventHandler;

use crate::engine::event::EngineEvent;
use crate::engine::health::HISTORY_LEN;
use crate::engine::rollback::{Plan, RunOutcome, StepKind};

use super::app::{App, Mode, Pane, RunView, StepStatus, VersionsView};
use super::keymap::{self, Action};

/// An input to `update`.
#[derive(Debug)]
pub enum Msg {
    Key(KeyEvent),
    Engine(EngineEvent),
    /// A plan requested by [`Effect::BuildPlan`] is ready, or failed.
    PlanBuilt {
        service: String,
        result: Result<Box<Plan>, String>,
    },
}

/// Work for the event loop to start outside `update`.
#[derive(Debug, PartialEq)]
pub enum Effect {
    BuildPlan { service: String, target: String },
    StartRun(Box<Plan>),
    ProbeNow(String),
    RefreshVersions(String),
}

/// Applies `msg` to `app` and returns the effects to start.
pub fn update(app: &mut App, msg: Msg) -> Vec<Effect> {
    match msg {
        Msg::Key(key) => on_key(app, key),
        Msg::Engine(event) => on_engine(app, event),
        Msg::PlanBuilt { service, result } => {
            let expected = matches!(&app.mode, Mode::Planning { service: s, .. } if *s == service);
            if expected {
                match result {
                    Ok(plan) => app.mode = Mode::Confirm(plan),
                    Err(error) => {
                        app.mode = Mode::Normal;
                        app.notice = Some(error);
                    }
                }
            }
            Vec::new()
        }
    }
}

fn on_key(app: &mut App, key: KeyEvent) -> Vec<Effect> {
    if app.mode == Mode::Filter && keymap::action(&app.mode, app.focus, key).is_none() {
        app.filter.handle_event(&Event::Key(key));
        select_first_visible(app);
        return Vec::new();
    }
    let Some(action) = keymap::action(&app.mode, app.focus, key) else {
        return Vec::new();
    };
    app.notice = None;

    match (&app.mode, action) {
        (_, Action::Quit) if app.running().is_some() && app.mode != Mode::ConfirmQuit => {
            app.mode = Mode::ConfirmQuit;
        }
        (_, Action::Quit) => app.should_quit = true,

        (Mode::ConfirmQuit, Action::Confirm) => app.should_quit = true,
        (Mode::ConfirmQuit, Action::Cancel) => app.mode = Mode::Normal,

        (Mode::Confirm(plan), Action::Confirm) => {
            let plan = plan.clone();
            app.run = Some(RunView::new(&plan));
            app.mode = Mode::Normal;
            app.focus = Pane::Run;
            return vec![Effect::StartRun(plan)];
        }
        (Mode::Confirm(_), Action::Cancel) => {
            app.mode = Mode::Normal;
            app.notice = Some("rollback cancelled; nothing changed".to_owned());
        }

        (Mode::Filter, Action::Confirm) => app.mode = Mode::Normal,
        (Mode::Filter, Action::Cancel) => {
            app.filter.reset();
            app.mode = Mode::Normal;
        }

        (Mode::Help, _) => app.mode = Mode::Normal,

        (_, Action::ToggleHelp) => app.mode = Mode::Help,
        (_, Action::StartFilter) => {
            app.mode = Mode::Filter;
        }
        (_, Action::NextPane) => app.focus = app.focus.next(),
        (_, Action::PreviousPane) => app.focus = app.focus.previous(),
        (_, Action::MoveUp) => move_cursor(app, -1),
        (_, Action::MoveDown) => move_cursor(app, 1),
        (_, Action::MoveTop) => move_cursor(app, isize::MIN),
        (_, Action::MoveBottom) => move_cursor(app, isize::MAX),
        (_, Action::ClearSelection) => app.version_cursor = None,
        (_, Action::StartRollback) => return start_rollback(app),
        (_, Action::Confirm | Action::Cancel) => {}
    }
    Vec::new()
}

/// Moves the cursor of the focused pane by `delta` rows; the extremes of
/// `isize` jump to the first or last row.
fn move_cursor(app: &mut App, delta: isize) {
    match app.focus {
        Pane::Services => {
            let visible = app.visible();
            if visible.is_empty() {
                return;
            }
            let at = visible.iter().position(|&i| i == app.selected).unwrap_or(0);
            let next = step_index(at, delta, visible.len());
            if visible[next] != app.selected {
                app.selected = visible[next];
                app.version_cursor = None;
            }
        }
        Pane::Versions => {
            let len = app.selected_service().map_or(0, |s| s.history().len());
            if len == 0 {
                return;
            }
            let at = app
                .version_cursor
                .or_else(|| deployed_index(app))
                .unwrap_or(0);
            app.version_cursor = Some(step_index(at, delta, len));
        }
        Pane::Health | Pane::Run => {}
    }
}

fn step_index(at: usize, delta: isize, len: usize) -> usize {
    match delta {
        isize::MIN => 0,
        isize::MAX => len - 1,
        delta => at.saturating_add_signed(delta).min(len - 1),
    }
}

fn deployed_index(app: &App) -> Option<usize> {
    app.selected_service()?
        .history()
        .iter()
        .position(|entry| entry.deployed)
}

fn select_first_visible(app: &mut App) {
    let visible = app.visible();
    if !visible.contains(&app.selected)
        && let Some(&first) = visible.first()
    {
        app.selected = first;
        app.version_cursor = None;
    }
}

/// Picks the target (the version under the cursor, else the one before the
/// deployed version) and requests a plan.
fn start_rollback(app: &mut App) -> Vec<Effect> {
    if let Some(run) = app.running() {
        app.notice = Some(format!(
            "a rollback of `{}` is running; wait for it to end",
            run.service
        ));
        return Vec::new();
    }
    let Some(service) = app.selected_service() else {
        return Vec::new();
    };
    let name = service.name.clone();
    let history = service.history();
    if !matches!(service.versions, VersionsView::Loaded(_)) {
        app.notice = Some(format!("versions of `{name}` are not loaded yet"));
        return Vec::new();
    }

    let target = match app.version_cursor {
        Some(cursor) => history.get(cursor).map(|entry| entry.commit.clone()),
        None => match history.iter().position(|entry| entry.deployed) {
            Some(at) => history.get(at + 1).map(|entry| entry.commit.clone()),
            None => Some("HEAD~1".to_owned()),
        },
    };
    let Some(target) = target else {
        app.notice = Some(format!("`{name}` has no earlier version to roll back to"));
        return Vec::new();
    };
    if history
        .iter()
        .any(|entry| entry.deployed && entry.commit == target)
    {
        app.notice = Some(format!("`{name}` already runs the selected version"));
        return Vec::new();
    }

    app.mode = Mode::Planning {
        service: name.clone(),
        target: target.clone(),
    };
    vec![Effect::BuildPlan {
        service: name,
        target,
    }]
}

fn on_engine(app: &mut App, event: EngineEvent) -> Vec<Effect> {
    match event {
        EngineEvent::VersionsLoaded { service, info } => {
            if let Some(view) = app.service_mut(&service) {
                view.versions = VersionsView::Loaded(info);
            }
            clamp_version_cursor(app);
        }
        EngineEvent::VersionsFailed { service, error } => {
            if let Some(view) = app.service_mut(&service) {
                view.versions = VersionsView::Failed(error);
            }
        }
        EngineEvent::ProbeCompleted {
            service,
            sample,
            state,
        } => {
            let at = sample.at;
            if let Some(view) = app.service_mut(&service) {
                if view.samples.len() == HISTORY_LEN {
                    view.samples.pop_front();
                }
                view.samples.push_back(sample);
                view.health = state;
            }
            if app.newest_sample.is_none_or(|newest| at > newest) {
                app.newest_sample = Some(at);
            }
        }
        EngineEvent::StepStarted { service, step, .. } => {
            if let Some(run) = run_of(app, &service) {
                match run.steps.iter_mut().find(|view| view.step == step) {
                    Some(view) => view.status = StepStatus::Running,
                    None => run.steps.push(super::app::StepView {
                        step,
                        description: format!("{} to {}", step.as_str(), run.from),
                        status: StepStatus::Running,
                        detail: String::new(),
                    }),
                }
                run.push_log(format!("▶ {}", step.as_str()));
            }
        }
        EngineEvent::StepOutput { service, line } => {
            if let Some(run) = run_of(app, &service) {
                run.push_log(format!("  {line}"));
            }
        }
        EngineEvent::StepFinished {
            service,
            step,
            ok,
            detail,
        } => {
            if let Some(run) = run_of(app, &service) {
                if let Some(view) = run.steps.iter_mut().find(|view| view.step == step) {
                    view.status = if ok {
                        StepStatus::Done
                    } else {
                        StepStatus::Failed
                    };
                    view.detail = detail.clone();
                }
                let mark = if ok { "✔" } else { "✖" };
                run.push_log(format!("{mark} {}: {detail}", step.as_str()));
            }
            if matches!(step, StepKind::Checkout | StepKind::Revert) {
                return vec![Effect::RefreshVersions(service)];
            }
        }
        EngineEvent::RunFinished { service, outcome } => {
            if let Some(run) = run_of(app, &service) {
                let summary = match &outcome {
                    RunOutcome::Succeeded => {
                        format!("done: {service} runs {} and is healthy", run.to)
                    }
                    RunOutcome::Reverted { reason } => {
                        format!("failed and reverted to {}: {reason}", run.from)
                    }
                    RunOutcome::RevertFailed { revert_error, .. } => {
                        format!("REVERT FAILED, check {service} by hand: {revert_error}")
                    }
                    RunOutcome::Refused { reason } => format!("refused, nothing changed: {reason}"),
                };
                run.push_log(summary);
                run.outcome = Some(outcome);
                run.finished = Some(std::time::Instant::now());
            }
            app.version_cursor = None;
            return vec![
                Effect::ProbeNow(service.clone()),
                Effect::RefreshVersions(service),
            ];
        }
    }
    Vec::new()
}

fn run_of<'a>(app: &'a mut App, service: &str) -> Option<&'a mut RunView> {
    app.run.as_mut().filter(|run| run.service == service)
}

fn clamp_version_cursor(app: &mut App) {
    let len = app.selected_service().map_or(0, |s| s.history().len());
    if let Some(cursor) = app.version_cursor {
        app.version_cursor = (len > 0).then(|| cursor.min(len - 1));
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::{Duration, SystemTime};

    use crossterm::event::{KeyCode, KeyModifiers};

    use super::*;
    use crate::config::{Config, HealthSpec, RestartSpec, RollbackPolicy, ServiceSpec, Strategy};
    use crate::engine::health::{HealthState, ProbeOutcome, Sample};
    use crate::engine::versions::{HistoryEntry, VersionInfo};

    fn app() -> App {
        let spec = |name: &str| ServiceSpec {
            name: name.into(),
            deploy_dir: PathBuf::from("/srv").join(name),
            branch: None,
            depends_on: Vec::new(),
            health: HealthSpec {
                url: "http://127.0.0.1:9/health".parse().unwrap(),
                interval: Duration::from_secs(1),
                timeout: Duration::from_secs(1),
                expected_status: Vec::new(),
                failure_threshold: 1,
                success_threshold: 1,
            },
            restart: RestartSpec {
                command: vec!["true".into()],
                timeout: Duration::from_secs(1),
                env: Default::default(),
            },
            rollback: RollbackPolicy {
                strategy: Strategy::Code,
                verify_timeout: Duration::from_secs(1),
                settle: Duration::ZERO,
            },
            backup: None,
        };
        App::new(&Config {
            path: PathBuf::from("/srv/services.toml"),
            state_dir: PathBuf::from("/srv/state"),
            read_only: false,
            services: vec![spec("orders"), spec("payments")],
        })
    }

    fn press(app: &mut App, code: KeyCode) -> Vec<Effect> {
        update(app, Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)))
    }

    fn versions(deployed: usize) -> VersionInfo {
        let history: Vec<HistoryEntry> = (0..3)
            .map(|n| HistoryEntry {
                commit: format!("commit{n}"),
                short: format!("c{n}"),
                tags: vec![format!("v{}", 3 - n)],
                subject: format!("release {n}"),
                author: "Dev".into(),
                time: 0,
                deployed: n == deployed,
            })
            .collect();
        VersionInfo {
            commit: history[deployed].commit.clone(),
            short: history[deployed].short.clone(),
            describe: None,
            branch: Some("main".into()),
            history_branch: Some("main".into()),
            dirty: Vec::new(),
            history,
        }
    }

    fn probe(app: &mut App, service: &str, seconds: u64, state: HealthState) {
        let sample = Sample {
            at: SystemTime::UNIX_EPOCH + Duration::from_secs(seconds),
            outcome: ProbeOutcome::Passed,
            status: Some(200),
            latency: Duration::from_millis(3),
            error: None,
        };
        let event = EngineEvent::ProbeCompleted {
            service: service.into(),
            sample,
            state,
        };
        update(app, Msg::Engine(event));
    }

    #[test]
    fn probe_sets_state_and_newest_sample() {
        let mut app = app();
        probe(&mut app, "payments", 20, HealthState::Down);
        probe(&mut app, "orders", 10, HealthState::Healthy);

        assert_eq!(app.services[1].health, HealthState::Down);
        assert_eq!(app.services[0].health, HealthState::Healthy);
        let newest = app.newest_sample.unwrap();
        assert_eq!(newest, SystemTime::UNIX_EPOCH + Duration::from_secs(20));
    }

    #[test]
    fn samples_are_capped() {
        let mut app = app();
        for second in 0..(HISTORY_LEN as u64 + 5) {
            probe(&mut app, "orders", second, HealthState::Healthy);
        }

        assert_eq!(app.services[0].samples.len(), HISTORY_LEN);
        let oldest = app.services[0].samples.front().unwrap().at;
        assert_eq!(oldest, SystemTime::UNIX_EPOCH + Duration::from_secs(5));
    }

    #[test]
    fn rollback_key_waits_for_versions() {
        let mut app = app();
        let effects = press(&mut app, KeyCode::Char('r'));

        assert!(effects.is_empty());
        assert_eq!(
            app.notice.as_deref(),
            Some("versions of `orders` are not loaded yet")
        );
    }

    #[test]
    fn rollback_key_targets_previous_version() {
        let mut app = app();
        let info = versions(0);
        update(
            &mut app,
            Msg::Engine(EngineEvent::VersionsLoaded {
                service: "orders".into(),
                info,
            }),
        );
        let effects = press(&mut app, KeyCode::Char('r'));

        assert_eq!(
            effects,
            [Effect::BuildPlan {
                service: "orders".into(),
                target: "commit1".into()
            }]
        );
        assert!(matches!(app.mode, Mode::Planning { .. }));
    }

    #[test]
    fn rollback_key_uses_version_cursor() {
        let mut app = app();
        let info = versions(0);
        update(
            &mut app,
            Msg::Engine(EngineEvent::VersionsLoaded {
                service: "orders".into(),
                info,
            }),
        );
        press(&mut app, KeyCode::Tab);
        press(&mut app, KeyCode::Char('G'));
        let effects = press(&mut app, KeyCode::Char('r'));

        assert_eq!(
            effects,
            [Effect::BuildPlan {
                service: "orders".into(),
                target: "commit2".into()
            }]
        );
    }

    #[test]
    fn oldest_version_has_nothing_before_it() {
        let mut app = app();
        let info = versions(2);
        update(
            &mut app,
            Msg::Engine(EngineEvent::VersionsLoaded {
                service: "orders".into(),
                info,
            }),
        );
        let effects = press(&mut app, KeyCode::Char('r'));

        assert!(effects.is_empty());
        assert_eq!(
            app.notice.as_deref(),
            Some("`orders` has no earlier version to roll back to")
        );
    }

    #[test]
    fn failed_plan_returns_to_normal_with_notice() {
        let mut app = app();
        app.mode = Mode::Planning {
            service: "orders".into(),
            target: "x".into(),
        };
        let msg = Msg::PlanBuilt {
            service: "orders".into(),
            result: Err("unknown revision `x`".into()),
        };
        update(&mut app, msg);

        assert_eq!(app.mode, Mode::Normal);
        assert_eq!(app.notice.as_deref(), Some("unknown revision `x`"));
    }

    #[test]
    fn run_finished_probes_and_rereads_versions() {
        let mut app = app();
        app.run = Some(RunView {
            service: "orders".into(),
            from: "v3".into(),
            to: "v2".into(),
            steps: Vec::new(),
            log: Default::default(),
            outcome: None,
            started: std::time::Instant::now(),
            finished: None,
        });
        let event = EngineEvent::RunFinished {
            service: "orders".into(),
            outcome: RunOutcome::Succeeded,
        };
        let effects = update(&mut app, Msg::Engine(event));

        assert_eq!(
            effects,
            [
                Effect::ProbeNow("orders".into()),
                Effect::RefreshVersions("orders".into())
            ]
        );
        let run = app.run.as_ref().unwrap();
        assert_eq!(run.outcome, Some(RunOutcome::Succeeded));
        assert_eq!(
            run.log.back().unwrap(),
            "done: orders runs v2 and is healthy"
        );
    }

    #[test]
    fn filter_selects_first_match() {
        let mut app = app();
        press(&mut app, KeyCode::Char('/'));
        press(&mut app, KeyCode::Char('p'));

        assert_eq!(app.selected, 1);
        assert_eq!(app.visible(), [1]);
        press(&mut app, KeyCode::Esc);
        assert_eq!(app.visible(), [0, 1]);
    }
}
