//! Keys: each key press becomes an action from the key table, and each
//! action changes the state or requests an effect from the event loop.

use crossterm::event::{Event, KeyEvent};
use tui_input::backend::crossterm::EventHandler;

use crate::engine::rollback::journal::{RecoveryMode, RunKind};

use super::Effect;
use crate::config::Strategy;
use crate::dashboard::app::{App, BackupsView, Mode, Pane, RunView, VersionsView};
use crate::dashboard::keymap::{self, Action};

pub(super) fn on_key(app: &mut App, key: KeyEvent) -> Vec<Effect> {
    let typing = matches!(app.mode, Mode::Filter | Mode::Reason(_));
    if typing && keymap::action(&app.mode, app.focus, key).is_none() {
        if app.mode == Mode::Filter {
            app.filter.handle_event(&Event::Key(key));
            select_first_visible(app);
        } else {
            app.reason.handle_event(&Event::Key(key));
        }
        return Vec::new();
    }
    let Some(action) = keymap::action(&app.mode, app.focus, key) else {
        return Vec::new();
    };
    app.notice = None;
    app.rollback_when_loaded = None;
    if app.read_only && keymap::changes_service(action) && matches!(app.mode, Mode::Normal) {
        app.notice = Some(
            "read-only mode: rollbacks are disabled (--read-only or read_only = true)".to_owned(),
        );
        return Vec::new();
    }

    match (&app.mode, action) {
        (_, Action::Quit) if app.running().is_some() && app.mode != Mode::ConfirmQuit => {
            app.mode = Mode::ConfirmQuit;
        }
        (_, Action::Quit) => app.should_quit = true,

        (Mode::ConfirmQuit, Action::Confirm) => app.should_quit = true,
        (Mode::ConfirmQuit, Action::Cancel) => app.mode = Mode::Normal,

        (Mode::Confirm(plan), Action::Confirm) => {
            let plan = plan.clone();
            let mut run = RunView::new(&plan);
            if app.pending_kind == RunKind::Undo {
                run.kind = "undo".to_owned();
            }
            app.run = Some(run);
            app.run_scroll = 0;
            app.mode = Mode::Normal;
            app.focus = Pane::Run;
            let reason = Some(app.reason.value().trim().to_owned()).filter(|r| !r.is_empty());
            app.reason.reset();
            return vec![Effect::StartRun {
                plan,
                kind: app.pending_kind,
                reason,
            }];
        }
        (Mode::Confirm(plan), Action::EditReason) => app.mode = Mode::Reason(plan.clone()),
        (Mode::Reason(plan), Action::Confirm) => app.mode = Mode::Confirm(plan.clone()),
        (Mode::Reason(plan), Action::Cancel) => {
            app.reason.reset();
            app.mode = Mode::Confirm(plan.clone());
        }
        (Mode::ConfirmRecovery(recovery), Action::Confirm) => {
            let recovery = recovery.clone();
            let mut run = RunView::new(&recovery.plan);
            run.kind = match recovery.mode {
                RecoveryMode::Resume => "resume".to_owned(),
                RecoveryMode::Abort => "abort".to_owned(),
            };
            run.steps
                .retain(|view| recovery.steps.iter().any(|s| s.step == view.step));
            app.run = Some(run);
            app.run_scroll = 0;
            app.mode = Mode::Normal;
            app.focus = Pane::Run;
            return vec![Effect::StartRecovery(recovery)];
        }
        (Mode::Confirm(_) | Mode::ConfirmRecovery(_), Action::Cancel) => {
            app.mode = Mode::Normal;
            app.reason.reset();
            app.notice = Some("cancelled; nothing changed".to_owned());
        }

        (Mode::Filter, Action::Confirm) => app.mode = Mode::Normal,
        (Mode::Filter, Action::Cancel) => {
            app.filter.reset();
            app.mode = Mode::Normal;
        }

        (Mode::Help, _) => app.mode = Mode::Normal,

        (_, Action::ToggleHelp) => app.mode = Mode::Help,
        // The filter narrows the services pane, so starting it from another
        // pane moves the focus there.
        (_, Action::StartFilter) => {
            app.mode = Mode::Filter;
            app.focus = Pane::Services;
        }
        (_, Action::NextPane) => {
            app.focus = app.focus.next();
            return focus_effects(app);
        }
        (_, Action::PreviousPane) => {
            app.focus = app.focus.previous();
            return focus_effects(app);
        }
        (_, Action::MoveUp) => move_cursor(app, -1),
        (_, Action::MoveDown) => move_cursor(app, 1),
        (_, Action::MoveTop) => move_cursor(app, isize::MIN),
        (_, Action::MoveBottom) => move_cursor(app, isize::MAX),
        (_, Action::ClearSelection) => {
            app.version_cursor = None;
            app.backup_cursor = None;
        }
        (_, Action::TakeBackup) => return take_backup(app),
        (_, Action::VerifyBackups) => {
            if let Some(service) = app.selected_service() {
                let name = service.name.clone();
                app.notice = Some(format!("checking the hashes of the backups of `{name}`…"));
                return vec![Effect::VerifyBackups(name)];
            }
        }
        (_, Action::StartRollback) => return start_rollback(app),
        (_, Action::StartUndo) => return start_undo(app),
        (_, Action::CancelRun) => return cancel_run(app),
        (_, Action::ResumeRun) => return start_recovery(app, RecoveryMode::Resume),
        (_, Action::AbortRun) => return start_recovery(app, RecoveryMode::Abort),
        (_, Action::Confirm | Action::Cancel | Action::EditReason) => {}
    }
    Vec::new()
}

/// Loads what a newly focused pane shows.
fn focus_effects(app: &App) -> Vec<Effect> {
    match (app.focus, app.selected_service()) {
        (Pane::History, _) => vec![Effect::LoadHistory],
        (Pane::Backups, Some(service)) => vec![Effect::LoadBackups(service.name.clone())],
        _ => Vec::new(),
    }
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
                app.backup_cursor = None;
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
        // The run pane scrolls up from its newest line.
        Pane::Run => {
            let len = app.run.as_ref().map_or(0, |run| run.log.len());
            app.run_scroll = match delta {
                isize::MIN => len.saturating_sub(1),
                isize::MAX => 0,
                delta => app
                    .run_scroll
                    .saturating_add_signed(-delta)
                    .min(len.saturating_sub(1)),
            };
        }
        Pane::Backups => {
            let len = app.selected_service().map_or(0, |s| s.backups_len());
            if len > 0 {
                let at = app.backup_cursor.unwrap_or(0);
                app.backup_cursor = Some(match app.backup_cursor {
                    None if delta == 1 || delta == -1 => 0,
                    _ => step_index(at, delta, len),
                });
            }
        }
        Pane::History => {
            let len = app.history.len();
            if len > 0 {
                app.history_scroll = step_index(app.history_scroll, delta, len);
            }
        }
        Pane::Health => {}
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

/// Returns the name of the selected service, or sets a notice why there is
/// none to act on.
fn service_to_change(app: &mut App) -> Option<String> {
    if let Some(run) = app.running() {
        app.notice = Some(format!(
            "a rollback of `{}` is running; wait for it to end or press c to cancel it",
            run.service
        ));
        return None;
    }
    match app.selected_service() {
        Some(service) => Some(service.name.clone()),
        None => {
            app.notice = Some("no service selected: the filter matches none".to_owned());
            None
        }
    }
}

/// Picks the target (the version under the cursor, else the one before the
/// deployed version) and requests a plan. While the service's history is
/// still being read, it waits for the history instead.
pub(super) fn start_rollback(app: &mut App) -> Vec<Effect> {
    let Some(name) = service_to_change(app) else {
        return Vec::new();
    };
    if let Some((_, summary)) = app.unfinished.iter().find(|(service, _)| *service == name) {
        app.notice = Some(format!(
            "{summary}: press R to resume or A to abort it first"
        ));
        return Vec::new();
    }
    let Some(service) = app.selected_service() else {
        return Vec::new();
    };
    let history = service.history();
    if let VersionsView::Failed(error) = &service.versions {
        app.notice = Some(format!(
            "cannot roll back `{name}`: reading its versions failed: {error}"
        ));
        return Vec::new();
    }
    if !matches!(service.versions, VersionsView::Loaded(_)) || service.history_trimmed {
        app.notice = Some(format!(
            "reading the versions of `{name}`; the plan opens when they arrive"
        ));
        app.rollback_when_loaded = Some(name);
        return Vec::new();
    }

    let backup = match (&service.backups, app.backup_cursor) {
        (BackupsView::Loaded(list), Some(at)) => list.get(at).map(|m| m.id.as_str().to_owned()),
        _ => None,
    };
    // The data strategy keeps the deployed code and only restores a backup.
    let data_only = service.strategy == Strategy::Data;
    let target = match (data_only, app.version_cursor) {
        (true, _) => Some("HEAD".to_owned()),
        (false, Some(cursor)) => history.get(cursor).map(|entry| entry.commit.clone()),
        (false, None) => match history.iter().position(|entry| entry.deployed) {
            Some(at) => history.get(at + 1).map(|entry| entry.commit.clone()),
            None => Some("HEAD~1".to_owned()),
        },
    };
    let Some(target) = target else {
        app.notice = Some(format!("`{name}` has no earlier version to roll back to"));
        return Vec::new();
    };
    if !data_only
        && history
            .iter()
            .any(|entry| entry.deployed && entry.commit == target)
    {
        app.notice = Some(format!("`{name}` already runs the selected version"));
        return Vec::new();
    }

    app.pending_kind = RunKind::Rollback;
    app.mode = Mode::Planning {
        service: name.clone(),
        target: target.clone(),
    };
    vec![Effect::BuildPlan {
        service: name,
        target,
        backup,
    }]
}

/// Starts a backup of the selected service, shown in the run pane.
fn take_backup(app: &mut App) -> Vec<Effect> {
    let Some(name) = service_to_change(app) else {
        return Vec::new();
    };
    if app
        .selected_service()
        .is_some_and(|service| service.backups == BackupsView::NotConfigured)
    {
        app.notice = Some(format!(
            "`{name}` has no backup table; add `[services.{name}.backup]` to services.toml"
        ));
        return Vec::new();
    }
    app.run = Some(RunView::backup(&name));
    app.run_scroll = 0;
    app.focus = Pane::Run;
    vec![Effect::TakeBackup(name)]
}

/// Requests the plan that undoes the selected service's last rollback.
fn start_undo(app: &mut App) -> Vec<Effect> {
    let Some(name) = service_to_change(app) else {
        return Vec::new();
    };
    app.pending_kind = RunKind::Undo;
    app.mode = Mode::Planning {
        service: name.clone(),
        target: "undo".to_owned(),
    };
    vec![Effect::BuildUndo(name)]
}

fn cancel_run(app: &mut App) -> Vec<Effect> {
    match app.running() {
        Some(run) => {
            app.notice = Some(format!(
                "cancelling the run of `{}` at its next safe point, then reverting it",
                run.service
            ));
            vec![Effect::CancelRun]
        }
        None => {
            app.notice = Some("no rollback is running; nothing to cancel".to_owned());
            Vec::new()
        }
    }
}

/// Requests the recovery plan of the selected service's unfinished run.
fn start_recovery(app: &mut App, mode: RecoveryMode) -> Vec<Effect> {
    let Some(name) = service_to_change(app) else {
        return Vec::new();
    };
    if !app.unfinished.iter().any(|(service, _)| *service == name) {
        app.notice = Some(format!("`{name}` has no unfinished run to recover"));
        return Vec::new();
    }
    app.mode = Mode::Planning {
        service: name.clone(),
        target: "recovery".to_owned(),
    };
    vec![Effect::BuildRecovery {
        service: name,
        mode,
    }]
}
