//! The dashboard's state as plain data. `update` is the only code that
//! changes it and `view` only reads it.

use std::collections::VecDeque;
use std::time::{Instant, SystemTime};

use tui_input::Input;

use crate::config::Config;
use crate::engine::health::{HISTORY_LEN, HealthState, Sample};
use crate::engine::rollback::{Plan, RunOutcome, StepKind};
use crate::engine::versions::{HistoryEntry, VersionInfo};

/// Lines of command output the run pane keeps.
pub const RUN_LOG_LEN: usize = 500;

/// The panes, in Tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Services,
    Versions,
    Health,
    Run,
}

impl Pane {
    pub const ALL: [Pane; 4] = [Pane::Services, Pane::Versions, Pane::Health, Pane::Run];

    pub fn title(self) -> &'static str {
        match self {
            Pane::Services => "Services",
            Pane::Versions => "Versions",
            Pane::Health => "Health",
            Pane::Run => "Run",
        }
    }

    pub fn next(self) -> Pane {
        let at = Pane::ALL.iter().position(|pane| *pane == self).unwrap_or(0);
        Pane::ALL[(at + 1) % Pane::ALL.len()]
    }

    pub fn previous(self) -> Pane {
        let at = Pane::ALL.iter().position(|pane| *pane == self).unwrap_or(0);
        Pane::ALL[(at + Pane::ALL.len() - 1) % Pane::ALL.len()]
    }
}

/// Input mode: the part of the dashboard the keyboard drives.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    Normal,
    /// Typing a filter for the services list.
    Filter,
    /// A plan is being built for `service`; the dialog opens when it is ready.
    Planning {
        service: String,
        target: String,
    },
    /// The confirmation dialog shows a plan.
    Confirm(Box<Plan>),
    /// Quitting while a rollback runs needs confirmation.
    ConfirmQuit,
    Help,
}

/// Versions of one service as loaded so far.
#[derive(Debug, Clone, PartialEq)]
pub enum VersionsView {
    Loading,
    Loaded(VersionInfo),
    Failed(String),
}

/// One row of the services pane and everything shown about it.
#[derive(Debug, Clone)]
pub struct ServiceView {
    pub name: String,
    pub url: String,
    pub health: HealthState,
    /// Newest last, at most [`HISTORY_LEN`].
    pub samples: VecDeque<Sample>,
    pub versions: VersionsView,
}

impl ServiceView {
    pub fn last_sample(&self) -> Option<&Sample> {
        self.samples.back()
    }

    /// Returns the newest failed sample.
    pub fn last_error(&self) -> Option<&Sample> {
        self.samples
            .iter()
            .rev()
            .find(|sample| sample.error.is_some())
    }

    /// Returns the share of passing samples, or `None` without samples.
    pub fn availability(&self) -> Option<f64> {
        if self.samples.is_empty() {
            return None;
        }
        let passed = self.samples.iter().filter(|s| s.passed()).count();
        Some(passed as f64 / self.samples.len() as f64)
    }

    pub fn history(&self) -> &[HistoryEntry] {
        match &self.versions {
            VersionsView::Loaded(info) => &info.history,
            _ => &[],
        }
    }

    /// Returns the version to show in the services table.
    pub fn version_label(&self) -> String {
        match &self.versions {
            VersionsView::Loading => "…".to_owned(),
            VersionsView::Loaded(info) => info.label(),
            VersionsView::Failed(_) => "error".to_owned(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepStatus {
    Pending,
    Running,
    Done,
    Failed,
}

#[derive(Debug, Clone)]
pub struct StepView {
    pub step: StepKind,
    pub description: String,
    pub status: StepStatus,
    pub detail: String,
}

/// The rollback shown in the run pane: the running one, or the last one.
#[derive(Debug, Clone)]
pub struct RunView {
    pub service: String,
    pub from: String,
    pub to: String,
    pub steps: Vec<StepView>,
    /// Output and progress lines, oldest first, at most [`RUN_LOG_LEN`].
    pub log: VecDeque<String>,
    pub outcome: Option<RunOutcome>,
    pub started: Instant,
    pub finished: Option<Instant>,
}

impl RunView {
    pub fn new(plan: &Plan) -> RunView {
        RunView {
            service: plan.service.clone(),
            from: plan.from.label.clone(),
            to: plan.to.label.clone(),
            steps: plan
                .steps
                .iter()
                .map(|planned| StepView {
                    step: planned.step,
                    description: planned.description.clone(),
                    status: StepStatus::Pending,
                    detail: String::new(),
                })
                .collect(),
            log: VecDeque::new(),
            outcome: None,
            started: Instant::now(),
            finished: None,
        }
    }

    pub fn is_running(&self) -> bool {
        self.outcome.is_none()
    }

    /// Returns the finished share of the steps, from 0 to 1.
    pub fn progress(&self) -> f64 {
        if self.outcome.is_some() {
            return 1.0;
        }
        let total = self.steps.len().max(1);
        let done = self
            .steps
            .iter()
            .filter(|step| matches!(step.status, StepStatus::Done | StepStatus::Failed))
            .count();
        done as f64 / total as f64
    }

    pub fn push_log(&mut self, line: String) {
        if self.log.len() == RUN_LOG_LEN {
            self.log.pop_front();
        }
        self.log.push_back(line);
    }
}

/// The whole dashboard state.
#[derive(Debug)]
pub struct App {
    pub config_path: String,
    pub services: Vec<ServiceView>,
    /// Index into `services` of the selected service.
    pub selected: usize,
    pub filter: Input,
    pub focus: Pane,
    /// Index into the selected service's history, when a version is picked.
    pub version_cursor: Option<usize>,
    pub mode: Mode,
    pub run: Option<RunView>,
    /// A one-line notice for the footer, such as why a key did nothing.
    pub notice: Option<String>,
    pub newest_sample: Option<SystemTime>,
    /// True when started with `--read-only` or `read_only = true`: keys that
    /// change a service are hidden and refused.
    pub read_only: bool,
    pub should_quit: bool,
}

impl App {
    pub fn new(config: &Config) -> App {
        App {
            config_path: config.path.display().to_string(),
            services: config
                .services
                .iter()
                .map(|spec| ServiceView {
                    name: spec.name.clone(),
                    url: crate::engine::health::redact_url(&spec.health.url),
                    health: HealthState::Unknown,
                    samples: VecDeque::with_capacity(HISTORY_LEN),
                    versions: VersionsView::Loading,
                })
                .collect(),
            selected: 0,
            filter: Input::default(),
            focus: Pane::Services,
            version_cursor: None,
            mode: Mode::Normal,
            run: None,
            notice: None,
            newest_sample: None,
            read_only: config.read_only,
            should_quit: false,
        }
    }

    /// Returns the indices of the services that match the filter, in order.
    pub fn visible(&self) -> Vec<usize> {
        let needle = self.filter.value().to_lowercase();
        self.services
            .iter()
            .enumerate()
            .filter(|(_, service)| {
                needle.is_empty() || service.name.to_lowercase().contains(&needle)
            })
            .map(|(index, _)| index)
            .collect()
    }

    pub fn selected_service(&self) -> Option<&ServiceView> {
        self.services.get(self.selected)
    }

    pub fn service_mut(&mut self, name: &str) -> Option<&mut ServiceView> {
        self.services
            .iter_mut()
            .find(|service| service.name == name)
    }

    pub fn running(&self) -> Option<&RunView> {
        self.run.as_ref().filter(|run| run.is_running())
    }

    /// Counts services per health state: healthy, unhealthy, down, unknown.
    pub fn counts(&self) -> [usize; 4] {
        let mut counts = [0; 4];
        for service in &self.services {
            let slot = match service.health {
                HealthState::Healthy => 0,
                HealthState::Unhealthy => 1,
                HealthState::Down => 2,
                HealthState::Unknown => 3,
            };
            counts[slot] += 1;
        }
        counts
    }
}
