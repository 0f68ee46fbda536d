//! Dashboard frames drawn on ratatui's test backend at 80x24 and 160x48,
//! compared with reviewed snapshots. Times, paths and ids are fixed so the
//! frames are the same on every machine.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use rewind::config::{Config, HealthSpec, RestartSpec, RollbackPolicy, ServiceSpec, Strategy};
use rewind::dashboard::app::App;
use rewind::dashboard::update::{Msg, update};
use rewind::dashboard::view::view;
use rewind::engine::event::EngineEvent;
use rewind::engine::health::{HealthState, ProbeOutcome, Sample};
use rewind::engine::rollback::{RunOutcome, StepKind};
use rewind::engine::versions::{HistoryEntry, VersionInfo};

const NAMES: [&str; 4] = ["gateway", "orders", "payments", "inventory"];

fn spec(name: &str, port: u16) -> ServiceSpec {
    ServiceSpec {
        name: name.to_owned(),
        deploy_dir: PathBuf::from(format!("/srv/{name}")),
        branch: None,
        depends_on: Vec::new(),
        health: HealthSpec {
            url: format!("http://127.0.0.1:{port}/health").parse().unwrap(),
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            expected_status: Vec::new(),
            failure_threshold: 2,
            success_threshold: 1,
        },
        restart: RestartSpec {
            command: vec!["systemctl".into(), "restart".into(), name.into()],
            timeout: Duration::from_secs(10),
            env: Default::default(),
        },
        rollback: RollbackPolicy {
            strategy: Strategy::Code,
            verify_timeout: Duration::from_secs(15),
            settle: Duration::ZERO,
        },
        backup: None,
    }
}

fn config() -> Config {
    Config {
        path: PathBuf::from("/srv/rewind/services.toml"),
        state_dir: PathBuf::from("/srv/rewind/state"),
        read_only: false,
        services: NAMES
            .iter()
            .enumerate()
            .map(|(i, name)| spec(name, 18081 + i as u16))
            .collect(),
    }
}

fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_796_000_000 + seconds)
}

fn history(service: &str, deployed: usize) -> VersionInfo {
    let entries: Vec<HistoryEntry> = (0..5)
        .map(|n| {
            let release = 4 - n;
            HistoryEntry {
                commit: format!("{:0>40}", format!("{service}{release}")),
                short: format!("{:0>7}", format!("{}{release}", &service[..2])),
                tags: vec![format!("v1.{release}.0")],
                subject: format!("{service}: release 1.{release}.0 with changes"),
                author: "Demo Dev".into(),
                time: 1_795_000_000 + release as i64 * 86_400,
                deployed: n == deployed,
            }
        })
        .collect();
    VersionInfo {
        commit: entries[deployed].commit.clone(),
        short: entries[deployed].short.clone(),
        describe: entries[deployed].tags.first().cloned(),
        branch: (deployed == 0).then(|| "main".into()),
        history_branch: Some("main".into()),
        dirty: Vec::new(),
        history: entries,
    }
}

fn sample(seconds: u64, outcome: ProbeOutcome, status: Option<u16>, millis: u64) -> Sample {
    let error = match outcome {
        ProbeOutcome::Passed => None,
        ProbeOutcome::BadStatus => Some("status 500: card processor client: nil pointer".into()),
        _ => Some("connection refused".into()),
    };
    Sample {
        at: at(seconds),
        outcome,
        status,
        latency: Duration::from_millis(millis),
        error,
    }
}

/// Returns an app where versions and probes have arrived and `payments` is broken.
fn loaded_app() -> App {
    let config = config();
    let mut app = App::new(&config);
    for name in NAMES {
        let info = history(name, 0);
        update(
            &mut app,
            Msg::Engine(EngineEvent::VersionsLoaded {
                service: name.into(),
                info,
                complete: true,
            }),
        );
    }
    for second in 0..30 {
        for (i, name) in NAMES.iter().enumerate() {
            let (outcome, status, state) = match *name {
                "payments" => (ProbeOutcome::BadStatus, Some(500), HealthState::Unhealthy),
                _ => (ProbeOutcome::Passed, Some(200), HealthState::Healthy),
            };
            let millis = 5 + (second * 7 + i as u64 * 3) % 20;
            let sample = sample(second, outcome, status, millis);
            let event = EngineEvent::ProbeCompleted {
                service: (*name).into(),
                sample,
                state,
            };
            update(&mut app, Msg::Engine(event));
        }
    }
    app
}

/// Presses `code`, then delivers the versions that each read it requests
/// returns, as the engines would.
fn key(app: &mut App, code: KeyCode) {
    let effects = update(app, Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)));
    for effect in effects {
        if let rewind::dashboard::update::Effect::RefreshVersions(service) = effect {
            let info = history(&service, 0);
            update(
                app,
                Msg::Engine(EngineEvent::VersionsLoaded {
                    service,
                    info,
                    complete: true,
                }),
            );
        }
    }
}

fn draw(app: &App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|frame| view(app, frame)).unwrap();
    let buffer = terminal.backend().buffer();
    let mut text = String::new();
    for y in 0..height {
        let line: String = (0..width).map(|x| buffer[(x, y)].symbol()).collect();
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

#[test]
fn first_frame_shows_every_service_unknown() {
    let app = App::new(&config());
    let frame = draw(&app, 80, 24);

    // At 80 columns the symbol `?` stands for unknown; 160 columns add the word.
    for name in NAMES {
        let row = frame
            .lines()
            .find(|line| line.contains(&format!("? {name}")));
        assert!(row.is_some(), "{name} is not shown as unknown:\n{frame}");
    }
    assert!(frame.contains("? 4"), "{frame}");
    assert!(frame.contains("no sample yet"), "{frame}");
    let wide = draw(&app, 160, 48);
    let row = wide
        .lines()
        .find(|line| line.contains("? payments"))
        .unwrap();
    assert!(row.contains("unknown"), "{row}");
    insta::assert_snapshot!("first_frame_80x24", frame);
}

#[test]
fn loaded_dashboard_80x24() {
    let mut app = loaded_app();
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    let frame = draw(&app, 80, 24);

    assert!(frame.contains("▲ payments"), "{frame}");
    assert!(frame.contains("status 500: card processor"), "{frame}");
    insta::assert_snapshot!("loaded_80x24", frame);
}

#[test]
fn loaded_dashboard_160x48() {
    let mut app = loaded_app();
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    insta::assert_snapshot!("loaded_160x48", draw(&app, 160, 48));
}

/// Walks the keys: select payments, move to the versions pane, pick the
/// next older version and press `r`; the plan arrives and is shown.
#[test]
fn confirm_dialog_shows_plan() {
    let mut app = loaded_app();
    key(&mut app, KeyCode::Char('j'));
    key(&mut app, KeyCode::Char('j'));
    key(&mut app, KeyCode::Tab);
    key(&mut app, KeyCode::Char('j'));
    let effects = update(
        &mut app,
        Msg::Key(KeyEvent::new(KeyCode::Char('r'), KeyModifiers::NONE)),
    );
    let target = format!("{:0>40}", "payments3");
    assert_eq!(
        effects,
        [rewind::dashboard::update::Effect::BuildPlan {
            service: "payments".into(),
            target: target.clone(),
            backup: None,
        }]
    );

    let plan = plan_for_payments(&target);
    update(
        &mut app,
        Msg::PlanBuilt {
            service: "payments".into(),
            result: Ok(Box::new(plan)),
        },
    );
    let frame = draw(&app, 80, 24);

    assert!(frame.contains("Roll back payments?"), "{frame}");
    assert!(frame.contains("y/Enter run"), "{frame}");
    insta::assert_snapshot!("confirm_80x24", frame);
}

fn plan_for_payments(target: &str) -> rewind::engine::rollback::Plan {
    use rewind::engine::rollback::{Plan, PlannedStep, VersionRef};
    let info = history("payments", 0);
    let step = |step, description: &str| PlannedStep {
        step,
        description: description.into(),
    };
    Plan {
        service: "payments".into(),
        strategy: Strategy::Code,
        from: VersionRef {
            commit: info.commit.clone(),
            short: info.short.clone(),
            label: "v1.4.0".into(),
        },
        to: VersionRef {
            commit: target.into(),
            short: "000pa3".into(),
            label: "v1.3.0".into(),
        },
        undone: vec![info.history[0].clone()],
        applied: Vec::new(),
        dirty: Vec::new(),
        steps: vec![
            step(StepKind::Lock, "take the lock of `payments`"),
            step(
                StepKind::CheckClean,
                "check `/srv/payments` has no uncommitted changes",
            ),
            step(StepKind::Checkout, "check out v1.3.0 (000pa3)"),
            step(
                StepKind::Restart,
                "run `systemctl restart payments` (timeout 10s)",
            ),
            step(
                StepKind::VerifyHealth,
                "wait for 1 passing probe of http://127.0.0.1:18083/health within 15s",
            ),
        ],
        restore: None,
    }
}

#[test]
fn run_pane_streams_steps_and_output() {
    let mut app = loaded_app();
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    let target = format!("{:0>40}", "payments3");
    app.mode = rewind::dashboard::app::Mode::Confirm(Box::new(plan_for_payments(&target)));
    key(&mut app, KeyCode::Char('y'));

    let service = || "payments".to_owned();
    let events = [
        EngineEvent::StepStarted {
            service: service(),
            step: StepKind::Lock,
            index: 0,
            total: 5,
        },
        EngineEvent::StepFinished {
            service: service(),
            step: StepKind::Lock,
            ok: true,
            detail: "lock taken".into(),
        },
        EngineEvent::StepStarted {
            service: service(),
            step: StepKind::CheckClean,
            index: 1,
            total: 5,
        },
        EngineEvent::StepFinished {
            service: service(),
            step: StepKind::CheckClean,
            ok: true,
            detail: "working tree is clean".into(),
        },
        EngineEvent::StepStarted {
            service: service(),
            step: StepKind::Checkout,
            index: 2,
            total: 5,
        },
        EngineEvent::StepFinished {
            service: service(),
            step: StepKind::Checkout,
            ok: true,
            detail: "checked out v1.3.0 (000pa3)".into(),
        },
        EngineEvent::StepStarted {
            service: service(),
            step: StepKind::Restart,
            index: 3,
            total: 5,
        },
        EngineEvent::StepOutput {
            service: service(),
            line: "stopped pid 4242".into(),
        },
        EngineEvent::StepOutput {
            service: service(),
            line: "started pid 4250 (release v1.3.0)".into(),
        },
    ];
    for event in events {
        update(&mut app, Msg::Engine(event));
    }
    let run = app.run.as_mut().unwrap();
    run.finished = Some(run.started + Duration::from_millis(1200));
    let running = draw(&app, 80, 24);
    assert!(
        running.contains("▶ restart") || running.contains("▶ run `systemctl"),
        "{running}"
    );
    assert!(running.contains("started pid 4250"), "{running}");

    let run = app.run.as_mut().unwrap();
    run.finished = None;
    for event in [
        EngineEvent::StepFinished {
            service: service(),
            step: StepKind::Restart,
            ok: true,
            detail: "restart command exited 0".into(),
        },
        EngineEvent::StepStarted {
            service: service(),
            step: StepKind::VerifyHealth,
            index: 4,
            total: 5,
        },
        EngineEvent::StepFinished {
            service: service(),
            step: StepKind::VerifyHealth,
            ok: true,
            detail: "healthy after 3 probes".into(),
        },
        EngineEvent::RunFinished {
            service: service(),
            outcome: RunOutcome::Succeeded,
        },
    ] {
        update(&mut app, Msg::Engine(event));
    }
    let run = app.run.as_mut().unwrap();
    run.finished = Some(run.started + Duration::from_millis(2400));
    let done = draw(&app, 80, 24);

    assert!(done.contains("done in 2.4s"), "{done}");
    insta::assert_snapshot!("run_done_80x24", done);
}

#[test]
fn filter_narrows_services() {
    let mut app = loaded_app();
    key(&mut app, KeyCode::Char('/'));
    for c in "pay".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    let frame = draw(&app, 80, 24);

    assert!(frame.contains("Services 1/4 /pay"), "{frame}");
    assert!(!frame.contains("gateway"), "{frame}");
    assert_eq!(app.services[app.selected].name, "payments");
}

#[test]
fn help_lists_every_key() {
    let mut app = loaded_app();
    key(&mut app, KeyCode::Char('?'));
    let frame = draw(&app, 80, 24);

    for label in [
        "↑/k",
        "↓/j",
        "Tab/S-Tab",
        "r",
        "u",
        "c",
        "/",
        "?",
        "q/C-c",
        "y/Enter",
        "n/Esc",
    ] {
        assert!(frame.contains(label), "{label} missing:\n{frame}");
    }
    insta::assert_snapshot!("help_80x24", frame);
}

#[test]
fn quit_asks_while_rollback_runs() {
    let mut app = loaded_app();
    let target = format!("{:0>40}", "payments3");
    app.mode = rewind::dashboard::app::Mode::Confirm(Box::new(plan_for_payments(&target)));
    key(&mut app, KeyCode::Enter);
    key(&mut app, KeyCode::Char('q'));

    assert!(!app.should_quit);
    assert!(draw(&app, 80, 24).contains("Quit anyway?"));
    key(&mut app, KeyCode::Char('y'));
    assert!(app.should_quit);
}

#[test]
fn quit_without_run_exits_at_once() {
    let mut app = loaded_app();
    key(&mut app, KeyCode::Char('q'));

    assert!(app.should_quit);
}
