//! Tests of `update`: keys, engine events and plans folded into the state.
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crossterm::event::{KeyCode, KeyModifiers};

use super::*;
use crate::config::Strategy as PlanStrategy;
use crate::config::{Config, HealthSpec, RestartSpec, RollbackPolicy, ServiceSpec, Strategy};
use crate::dashboard::app::{Pane, RunView};
use crate::engine::health::HISTORY_LEN;
use crate::engine::health::{HealthState, ProbeOutcome, Sample};
use crate::engine::rollback::{Plan, RunOutcome, VersionRef};
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

/// Delivers `info` as a complete versions read of `service`.
fn load_versions(app: &mut App, service: &str, info: VersionInfo) -> Vec<Effect> {
    update(
        app,
        Msg::Engine(EngineEvent::VersionsLoaded {
            service: service.into(),
            info,
            complete: true,
        }),
    )
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

/// Returns a passing probe sample of `service` taken at `seconds`.
fn probe_msg(service: &str, seconds: u64, state: HealthState) -> Msg {
    let sample = Sample {
        at: SystemTime::UNIX_EPOCH + Duration::from_secs(seconds),
        outcome: ProbeOutcome::Passed,
        status: Some(200),
        latency: Duration::from_millis(3),
        error: None,
    };
    Msg::Engine(EngineEvent::ProbeCompleted {
        service: service.into(),
        sample,
        state,
    })
}

fn probe(app: &mut App, service: &str, seconds: u64, state: HealthState) {
    update(app, probe_msg(service, seconds, state));
}

#[test]
fn quiet_sample_keeps_health_state() {
    let mut app = app();
    probe(&mut app, "payments", 10, HealthState::Healthy);
    let healthy = probe_msg("payments", 11, HealthState::Healthy);
    assert!(is_quiet_sample(&mut app, &healthy));
    let down = probe_msg("payments", 12, HealthState::Down);
    assert!(!is_quiet_sample(&mut app, &down));
    let unknown_service = probe_msg("missing", 12, HealthState::Healthy);
    assert!(!is_quiet_sample(&mut app, &unknown_service));
    let key = Msg::Key(KeyEvent::from(KeyCode::Char('j')));
    assert!(!is_quiet_sample(&mut app, &key));
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
        Some("reading the versions of `orders`; the plan opens when they arrive")
    );
    assert_eq!(app.rollback_when_loaded.as_deref(), Some("orders"));

    let effects = load_versions(&mut app, "orders", versions(0));

    assert_eq!(effects, [plan_of_orders()]);
    assert!(matches!(app.mode, Mode::Planning { .. }));
    assert_eq!(app.notice, None);
    assert_eq!(app.rollback_when_loaded, None);
}

#[test]
fn key_while_waiting_cancels_rollback() {
    let mut app = app();
    press(&mut app, KeyCode::Char('r'));
    press(&mut app, KeyCode::Char('?'));
    press(&mut app, KeyCode::Esc);

    let effects = load_versions(&mut app, "orders", versions(0));

    assert!(effects.is_empty());
    assert_eq!(app.mode, Mode::Normal);
    assert_eq!(app.rollback_when_loaded, None);
}

#[test]
fn failed_read_ends_wait_for_versions() {
    let mut app = app();
    press(&mut app, KeyCode::Char('r'));

    let effects = update(
        &mut app,
        Msg::Engine(EngineEvent::VersionsFailed {
            service: "orders".into(),
            error: "not a git repository".into(),
        }),
    );

    assert!(effects.is_empty());
    assert_eq!(
        app.notice.as_deref(),
        Some("cannot roll back `orders`: reading its versions failed: not a git repository")
    );
    assert_eq!(app.rollback_when_loaded, None);
    // The key names the failure again instead of waiting.
    assert!(press(&mut app, KeyCode::Char('r')).is_empty());
    assert_eq!(app.rollback_when_loaded, None);
    assert_eq!(
        app.notice.as_deref(),
        Some("cannot roll back `orders`: reading its versions failed: not a git repository")
    );
}

/// Returns the effect that plans the rollback of `orders` to the commit
/// before its deployed one.
fn plan_of_orders() -> Effect {
    Effect::BuildPlan {
        service: "orders".into(),
        target: "commit1".into(),
        backup: None,
    }
}

#[test]
fn rollback_key_targets_previous_version() {
    let mut app = app();
    let info = versions(0);
    load_versions(&mut app, "orders", info);
    let effects = press(&mut app, KeyCode::Char('r'));

    assert_eq!(effects, [plan_of_orders()]);
    assert!(matches!(app.mode, Mode::Planning { .. }));
}

#[test]
fn rollback_key_uses_version_cursor() {
    let mut app = app();
    let info = versions(0);
    load_versions(&mut app, "orders", info);
    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Char('G'));
    let effects = press(&mut app, KeyCode::Char('r'));

    assert_eq!(
        effects,
        [Effect::BuildPlan {
            service: "orders".into(),
            target: "commit2".into(),
            backup: None,
        }]
    );
}

#[test]
fn oldest_version_has_nothing_before_it() {
    let mut app = app();
    let info = versions(2);
    load_versions(&mut app, "orders", info);
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
    app.run = Some(RunView::new(&plan("v3", "v2")));
    let event = EngineEvent::RunFinished {
        service: "orders".into(),
        outcome: RunOutcome::Succeeded,
    };
    let effects = update(&mut app, Msg::Engine(event));

    assert_eq!(
        effects,
        [
            Effect::ProbeNow("orders".into()),
            Effect::RefreshVersions("orders".into()),
            Effect::LoadBackups("orders".into()),
            Effect::CheckUnfinished,
            Effect::LoadHistory,
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

#[test]
fn filter_from_another_pane_moves_to_services() {
    let mut app = app();
    app.focus = Pane::Health;
    press(&mut app, KeyCode::Char('/'));
    let effects = press(&mut app, KeyCode::Char('r'));

    assert_eq!(app.focus, Pane::Services);
    assert!(matches!(app.mode, Mode::Filter));
    assert_eq!(app.filter.value(), "r");
    assert!(effects.is_empty());
}

fn plan(from: &str, to: &str) -> Plan {
    let version = |label: &str| VersionRef {
        commit: format!("{label:0>40}"),
        short: label.into(),
        label: label.into(),
    };
    Plan {
        service: "orders".into(),
        strategy: PlanStrategy::Code,
        from: version(from),
        to: version(to),
        undone: Vec::new(),
        applied: Vec::new(),
        dirty: Vec::new(),
        steps: Vec::new(),
        restore: None,
    }
}

#[test]
fn filter_without_match_blocks_rollback() {
    let mut app = app();
    let info = versions(0);
    load_versions(&mut app, "orders", info);
    press(&mut app, KeyCode::Char('/'));
    press(&mut app, KeyCode::Char('z'));
    press(&mut app, KeyCode::Enter);
    let effects = press(&mut app, KeyCode::Char('r'));

    assert!(effects.is_empty());
    assert_eq!(
        app.notice.as_deref(),
        Some("no service selected: the filter matches none")
    );
}

#[test]
fn read_only_refuses_rollback_key() {
    let mut app = app();
    app.read_only = true;
    let info = versions(0);
    load_versions(&mut app, "orders", info);
    let effects = press(&mut app, KeyCode::Char('r'));

    assert!(effects.is_empty());
    assert!(app.notice.as_deref().unwrap().starts_with("read-only mode"));
}

#[test]
fn confirm_passes_reason_and_kind() {
    let mut app = app();
    app.mode = Mode::Confirm(Box::new(plan("v3", "v2")));
    press(&mut app, KeyCode::Char('w'));
    for c in "pager".chars() {
        press(&mut app, KeyCode::Char(c));
    }
    press(&mut app, KeyCode::Enter);
    let effects = press(&mut app, KeyCode::Char('y'));

    assert_eq!(
        effects,
        [Effect::StartRun {
            plan: Box::new(plan("v3", "v2")),
            kind: crate::engine::rollback::journal::RunKind::Rollback,
            reason: Some("pager".into()),
        }]
    );
    assert_eq!(app.focus, Pane::Run);
    assert_eq!(app.reason.value(), "");
}

#[test]
fn cancel_key_needs_a_running_run() {
    let mut app = app();
    assert!(press(&mut app, KeyCode::Char('c')).is_empty());
    assert_eq!(
        app.notice.as_deref(),
        Some("no rollback is running; nothing to cancel")
    );

    app.run = Some(RunView::new(&plan("v3", "v2")));
    assert_eq!(press(&mut app, KeyCode::Char('c')), [Effect::CancelRun]);
}

#[test]
fn finished_run_closes_quit_question() {
    let mut app = app();
    app.run = Some(RunView::new(&plan("v3", "v2")));
    press(&mut app, KeyCode::Char('q'));
    assert_eq!(app.mode, Mode::ConfirmQuit);

    let event = EngineEvent::RunFinished {
        service: "orders".into(),
        outcome: RunOutcome::Succeeded,
    };
    update(&mut app, Msg::Engine(event));

    assert_eq!(app.mode, Mode::Normal);
    assert!(!app.should_quit);
}

#[test]
fn repeated_output_lines_collapse() {
    let mut run = RunView::new(&plan("v3", "v2"));
    run.push_log("stopped pid 7".into());
    for _ in 0..3 {
        run.push_log("probe failed: connection refused".into());
    }
    run.push_log("probe passed".into());
    let log: Vec<&str> = run.log.iter().map(String::as_str).collect();

    assert_eq!(
        log,
        [
            "stopped pid 7",
            "probe failed: connection refused (×3)",
            "probe passed"
        ]
    );
}

#[test]
fn recovery_keys_need_an_unfinished_run() {
    let mut app = app();
    assert!(press(&mut app, KeyCode::Char('R')).is_empty());
    assert_eq!(
        app.notice.as_deref(),
        Some("`orders` has no unfinished run to recover")
    );

    app.unfinished = vec![("orders".into(), "unfinished rollback of `orders`".into())];
    let effects = press(&mut app, KeyCode::Char('A'));
    assert_eq!(
        effects,
        [Effect::BuildRecovery {
            service: "orders".into(),
            mode: crate::engine::rollback::journal::RecoveryMode::Abort,
        }]
    );
}

#[test]
fn unselected_service_keeps_deployed_entry_only() {
    let mut app = app();
    load_versions(&mut app, "orders", versions(0));
    load_versions(&mut app, "payments", versions(1));

    let orders = &app.services[0];
    let payments = &app.services[1];
    assert_eq!(orders.history().len(), 3);
    assert!(!orders.history_trimmed);
    assert_eq!(payments.history().len(), 1);
    assert_eq!(payments.history()[0].commit, "commit1");
    assert!(payments.history_trimmed);
    assert_eq!(payments.version_label(), "v2");
}

#[test]
fn selecting_trimmed_service_reads_its_history() {
    let mut app = app();
    load_versions(&mut app, "orders", versions(0));
    load_versions(&mut app, "payments", versions(1));

    let effects = press(&mut app, KeyCode::Down);

    assert_eq!(effects, [Effect::RefreshVersions("payments".into())]);
    assert_eq!(app.services[0].history().len(), 1);
    assert!(app.services[0].history_trimmed);
    assert_eq!(app.services[0].version_label(), "v3");
    // The plan waits for the whole history.
    assert!(press(&mut app, KeyCode::Char('r')).is_empty());
    assert_eq!(
        app.notice.as_deref(),
        Some("reading the versions of `payments`; the plan opens when they arrive")
    );

    let effects = load_versions(&mut app, "payments", versions(1));

    assert_eq!(
        effects,
        [Effect::BuildPlan {
            service: "payments".into(),
            target: "commit2".into(),
            backup: None,
        }]
    );

    assert_eq!(app.services[1].history().len(), 3);
    assert!(!app.services[1].history_trimmed);
}

#[test]
fn deployed_entry_alone_for_selected_service_reads_history() {
    let mut app = app();
    let mut info = versions(1);
    info.history.retain(|entry| entry.deployed);

    let effects = update(
        &mut app,
        Msg::Engine(EngineEvent::VersionsLoaded {
            service: "orders".into(),
            info,
            complete: false,
        }),
    );

    assert_eq!(effects, [Effect::RefreshVersions("orders".into())]);
    assert!(app.services[0].history_trimmed);
    assert_eq!(app.services[0].version_label(), "v2");
}
