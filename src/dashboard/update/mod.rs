//! `update`: the one place that changes the dashboard state. It takes a
//! message (a key, an engine event, a finished plan) and returns the
//! effects the event loop must start, so it never blocks and tests can
//! drive it without a terminal.

mod events;
mod keys;
#[cfg(test)]
mod tests;

use crossterm::event::KeyEvent;

use crate::engine::backup::Manifest;
use crate::engine::coord::audit::AuditEntry;
use crate::engine::event::EngineEvent;
use crate::engine::rollback::journal::{RecoveryMode, RunKind};
use crate::engine::rollback::{Plan, RecoveryPlan};

use super::app::{App, BackupsView, Mode};

/// Tells whether `msg` is a probe sample that leaves its service's health
/// state as it is, so that drawing it can wait. Call it before [`update`]
/// folds `msg` in.
pub fn is_quiet_sample(app: &mut App, msg: &Msg) -> bool {
    match msg {
        Msg::Engine(EngineEvent::ProbeCompleted { service, state, .. }) => app
            .service_mut(service)
            .is_some_and(|view| view.health == *state),
        _ => false,
    }
}

/// An input to `update`.
#[derive(Debug)]
pub enum Msg {
    Key(KeyEvent),
    Engine(EngineEvent),
    /// A plan requested by [`Effect::BuildPlan`] or [`Effect::BuildUndo`]
    /// is ready, or failed.
    PlanBuilt {
        service: String,
        result: Result<Box<Plan>, String>,
    },
    /// A recovery requested by [`Effect::BuildRecovery`] is ready, or failed.
    RecoveryBuilt {
        service: String,
        result: Result<Box<RecoveryPlan>, String>,
    },
    /// The services with an unfinished run, and its summary.
    UnfinishedFound(Vec<(String, String)>),
    /// The audit log, newest first.
    HistoryLoaded(Vec<AuditEntry>),
    /// The backups of a service, newest first, or why they could not be read.
    BackupsLoaded {
        service: String,
        result: Result<Vec<Manifest>, String>,
    },
    /// Hash checks of a service's backups: id and whether it matched.
    BackupsVerified {
        service: String,
        results: Vec<(String, bool)>,
    },
}

/// Work for the event loop to start outside `update`.
#[derive(Debug, PartialEq)]
pub enum Effect {
    BuildPlan {
        service: String,
        target: String,
        /// Backup picked in the backups pane, for data strategies.
        backup: Option<String>,
    },
    BuildUndo(String),
    BuildRecovery {
        service: String,
        mode: RecoveryMode,
    },
    StartRun {
        plan: Box<Plan>,
        kind: RunKind,
        reason: Option<String>,
    },
    StartRecovery(Box<RecoveryPlan>),
    CancelRun,
    ProbeNow(String),
    RefreshVersions(String),
    /// Read the journals again for the unfinished-run banner.
    CheckUnfinished,
    LoadHistory,
    LoadBackups(String),
    TakeBackup(String),
    VerifyBackups(String),
}

/// Applies `msg` to `app` and returns the effects to start.
pub fn update(app: &mut App, msg: Msg) -> Vec<Effect> {
    let selected = app.selected;
    let mut effects = fold(app, msg);
    if app.selected != selected {
        effects.extend(selection_moved(app, selected));
    }
    effects
}

/// Drops the history of the service that was selected and requests the
/// history of the one that is, when it was dropped.
fn selection_moved(app: &mut App, previous: usize) -> Vec<Effect> {
    if let Some(view) = app.services.get_mut(previous) {
        view.trim_history();
    }
    match app.services.get(app.selected) {
        Some(view) if view.history_trimmed => vec![Effect::RefreshVersions(view.name.clone())],
        _ => Vec::new(),
    }
}

fn fold(app: &mut App, msg: Msg) -> Vec<Effect> {
    match msg {
        Msg::Key(key) => keys::on_key(app, key),
        Msg::Engine(event) => events::on_engine(app, event),
        Msg::PlanBuilt { service, result } => {
            if planning(app, &service) {
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
        Msg::RecoveryBuilt { service, result } => {
            if planning(app, &service) {
                match result {
                    Ok(recovery) => app.mode = Mode::ConfirmRecovery(recovery),
                    Err(error) => {
                        app.mode = Mode::Normal;
                        app.notice = Some(error);
                    }
                }
            }
            Vec::new()
        }
        Msg::UnfinishedFound(unfinished) => {
            app.unfinished = unfinished;
            Vec::new()
        }
        Msg::BackupsLoaded { service, result } => {
            if let Some(view) = app.service_mut(&service) {
                view.backups = match result {
                    Ok(list) => BackupsView::Loaded(list),
                    Err(error) => BackupsView::Failed(error),
                };
            }
            let len = app.selected_service().map_or(0, |s| s.backups_len());
            app.backup_cursor = app.backup_cursor.filter(|&at| at < len);
            Vec::new()
        }
        Msg::BackupsVerified { service, results } => {
            let bad: Vec<&str> = results
                .iter()
                .filter(|(_, ok)| !ok)
                .map(|(id, _)| id.as_str())
                .collect();
            app.notice = Some(if bad.is_empty() {
                format!(
                    "all {} backups of `{service}` match their hashes",
                    results.len()
                )
            } else {
                format!(
                    "backups of `{service}` that fail their hash: {}",
                    bad.join(", ")
                )
            });
            app.verified.extend(results);
            Vec::new()
        }
        Msg::HistoryLoaded(entries) => {
            app.history = entries;
            app.history_scroll = app.history_scroll.min(app.history.len().saturating_sub(1));
            Vec::new()
        }
    }
}

/// Tells whether the dashboard waits for a plan of `service`.
fn planning(app: &App, service: &str) -> bool {
    matches!(&app.mode, Mode::Planning { service: waiting, .. } if waiting == service)
}
