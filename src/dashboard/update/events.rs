//! Engine events folded into the state: versions, probe samples, and the
//! steps and output of the run in the run pane.

use crate::engine::event::EngineEvent;
use crate::engine::rollback::{RunOutcome, StepKind};

use super::Effect;
use crate::dashboard::app::{App, Mode, RunView, ServiceView, StepStatus, StepView, VersionsView};
use crate::engine::versions::VersionInfo;

pub(super) fn on_engine(app: &mut App, event: EngineEvent) -> Vec<Effect> {
    match event {
        EngineEvent::VersionsLoaded {
            service,
            info,
            complete,
        } => {
            let selected = app
                .services
                .get(app.selected)
                .is_some_and(|view| view.name == service);
            if let Some(view) = app.service_mut(&service) {
                store_versions(view, info, selected && complete);
            }
            clamp_version_cursor(app);
            // The selection moved to this service while its deployed entry
            // alone was read.
            if selected && !complete {
                return vec![Effect::RefreshVersions(service)];
            }
            if selected && app.rollback_when_loaded.as_deref() == Some(service.as_str()) {
                app.rollback_when_loaded = None;
                if app.mode == Mode::Normal {
                    app.notice = None;
                    return super::keys::start_rollback(app);
                }
            }
        }
        EngineEvent::VersionsFailed { service, error } => {
            if app.rollback_when_loaded.as_deref() == Some(service.as_str()) {
                app.rollback_when_loaded = None;
                app.notice = Some(format!(
                    "cannot roll back `{service}`: reading its versions failed: {error}"
                ));
            }
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
                view.samples.push(sample);
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
                    None => run.steps.push(StepView {
                        step,
                        description: format!("{} to {}", step.as_str(), run.from),
                        status: StepStatus::Running,
                        detail: String::new(),
                    }),
                }
            }
        }
        EngineEvent::StepOutput { service, line } => {
            if let Some(run) = run_of(app, &service) {
                run.push_log(line);
            }
        }
        EngineEvent::StepFinished {
            service,
            step,
            ok,
            detail,
        } => {
            if let Some(run) = run_of(app, &service)
                && let Some(view) = run.steps.iter_mut().find(|view| view.step == step)
            {
                view.status = if ok {
                    StepStatus::Done
                } else {
                    StepStatus::Failed
                };
                view.detail = detail;
            }
            if matches!(step, StepKind::Checkout | StepKind::Revert) {
                return vec![Effect::RefreshVersions(service)];
            }
        }
        EngineEvent::RunFinished { service, outcome } => {
            if let Some(run) = run_of(app, &service) {
                let summary = match &outcome {
                    RunOutcome::Succeeded if run.kind == "backup" => {
                        format!("done: backup of {service} taken")
                    }
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
            app.run_scroll = 0;
            // Nothing runs any more, so the quit question has no reason left.
            if app.mode == Mode::ConfirmQuit {
                app.mode = Mode::Normal;
            }
            return vec![
                Effect::ProbeNow(service.clone()),
                Effect::RefreshVersions(service.clone()),
                Effect::LoadBackups(service),
                Effect::CheckUnfinished,
                Effect::LoadHistory,
            ];
        }
    }
    Vec::new()
}

/// Stores `info` unless it equals the stored versions, with the whole
/// history only when the service is `selected`. Each refresh reads every
/// service again, and most reads find nothing new. Keeping the stored copy
/// frees the new one at once, so the long-lived copies are not reallocated
/// on every refresh.
fn store_versions(view: &mut ServiceView, mut info: VersionInfo, selected: bool) {
    if !selected {
        info.history.retain(|entry| entry.deployed);
        info.history.shrink_to_fit();
    }
    let unchanged = view.history_trimmed != selected
        && matches!(&view.versions, VersionsView::Loaded(stored) if *stored == info);
    if !unchanged {
        view.versions = VersionsView::Loaded(info);
        view.history_trimmed = !selected;
    }
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
    use super::*;
    use crate::config::Strategy;
    use crate::dashboard::app::BackupsView;
    use crate::engine::health::{HealthState, History};
    use crate::engine::versions::HistoryEntry;

    fn service_view() -> ServiceView {
        ServiceView {
            name: "orders".into(),
            url: "http://127.0.0.1:9/health".into(),
            health: HealthState::Unknown,
            samples: History::new(),
            versions: VersionsView::Loading,
            history_trimmed: false,
            backups: BackupsView::NotConfigured,
            strategy: Strategy::Code,
            backup_max_age: None,
        }
    }

    fn versions(head: &str) -> VersionInfo {
        VersionInfo {
            commit: head.into(),
            short: head[..2].into(),
            describe: None,
            branch: Some("main".into()),
            history_branch: Some("main".into()),
            dirty: Vec::new(),
            history: vec![HistoryEntry {
                commit: head.into(),
                short: head[..2].into(),
                tags: Vec::new(),
                subject: "release".into(),
                author: "Dev".into(),
                time: 0,
                deployed: true,
            }],
        }
    }

    fn stored_history_address(view: &ServiceView) -> *const HistoryEntry {
        match &view.versions {
            VersionsView::Loaded(info) => info.history.as_ptr(),
            other => panic!("versions not loaded: {other:?}"),
        }
    }

    #[test]
    fn equal_versions_keep_stored_copy() {
        let mut view = service_view();
        store_versions(&mut view, versions("c1abcdef"), true);
        let stored = stored_history_address(&view);

        store_versions(&mut view, versions("c1abcdef"), true);

        assert_eq!(stored_history_address(&view), stored);
        assert_eq!(view.versions, VersionsView::Loaded(versions("c1abcdef")));
    }

    #[test]
    fn changed_versions_replace_stored_copy() {
        let mut view = service_view();
        store_versions(&mut view, versions("c1abcdef"), true);

        store_versions(&mut view, versions("c2abcdef"), true);

        assert_eq!(view.versions, VersionsView::Loaded(versions("c2abcdef")));
    }
}
