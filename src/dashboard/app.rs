//! The dashboard's state as plain data. `update` is the only code that
//! changes it and `view` only reads it.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime};

use tui_input::Input;

use crate::config::{Config, Strategy};
use crate::engine::backup::Manifest;
use crate::engine::coord::audit::AuditEntry;
use crate::engine::health::{HealthState, History, HistorySample};
use crate::engine::rollback::journal::RunKind;
use crate::engine::rollback::{Plan, RecoveryPlan, RunOutcome, StepKind};
use crate::engine::versions::{HistoryEntry, VersionInfo};

/// Lines of command output the run pane keeps.
pub const RUN_LOG_LEN: usize = 500;

/// The panes, in Tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Services,
    Versions,
    Backups,
    Health,
    Run,
    History,
}

impl Pane {
    pub const ALL: [Pane; 6] = [
        Pane::Services,
        Pane::Versions,
        Pane::Backups,
        Pane::Health,
        Pane::Run,
        Pane::History,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Pane::Services => "Services",
            Pane::Versions => "Versions",
            Pane::Backups => "Backups",
            Pane::Health => "Health",
            Pane::Run => "Run",
            Pane::History => "History",
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
    /// The reason line of the confirmation dialog is being written.
    Reason(Box<Plan>),
    /// The confirmation dialog shows a recovery of an unfinished run.
    ConfirmRecovery(Box<RecoveryPlan>),
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
    /// The recent probe samples, oldest first.
    pub samples: History,
    pub versions: VersionsView,
    /// Set while `versions` holds only the deployed entry of the history:
    /// the history of a service that is not selected is dropped to keep
    /// memory low with many services, and read again when it is selected.
    pub history_trimmed: bool,
    pub backups: BackupsView,
    /// The strategy `r` plans with.
    pub strategy: Strategy,
    /// Age of the newest backup past which the services table warns.
    pub backup_max_age: Option<Duration>,
}

/// Backups of one service as loaded so far.
#[derive(Debug, Clone, PartialEq)]
pub enum BackupsView {
    /// The service has no backup table.
    NotConfigured,
    Loading,
    /// Newest first.
    Loaded(Vec<Manifest>),
    Failed(String),
}

impl ServiceView {
    /// Returns the number of loaded backups.
    pub fn backups_len(&self) -> usize {
        match &self.backups {
            BackupsView::Loaded(list) => list.len(),
            _ => 0,
        }
    }

    /// Returns the newest backup, when the backups are loaded and there is one.
    pub fn newest_backup(&self) -> Option<&Manifest> {
        match &self.backups {
            BackupsView::Loaded(list) => list.first(),
            _ => None,
        }
    }

    /// Tells whether the newest backup is older than `backup_max_age`, or
    /// missing although backups are configured.
    pub fn backup_overdue(&self, now: SystemTime) -> bool {
        let Some(limit) = self.backup_max_age else {
            return false;
        };
        match &self.backups {
            BackupsView::Loaded(list) => list.first().is_none_or(|newest| newest.age(now) > limit),
            _ => false,
        }
    }

    pub fn last_sample(&self) -> Option<HistorySample> {
        self.samples.back()
    }

    /// Returns the start time and error text of the newest failed sample
    /// among the recent samples.
    pub fn last_error(&self) -> Option<(SystemTime, &str)> {
        self.samples.last_error()
    }

    /// Returns the share of passing samples, or `None` without samples.
    pub fn availability(&self) -> Option<f64> {
        self.samples.availability()
    }

    /// Drops the history entries other than the deployed one, which the
    /// services table's version label needs.
    pub fn trim_history(&mut self) {
        if let VersionsView::Loaded(info) = &mut self.versions {
            info.history.retain(|entry| entry.deployed);
            info.history.shrink_to_fit();
            self.history_trimmed = true;
        }
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
    /// Kind of the run as its title shows it: rollback, undo, resume, abort, backup.
    pub kind: String,
    pub from: String,
    pub to: String,
    pub steps: Vec<StepView>,
    /// Output and progress lines, oldest first, at most [`RUN_LOG_LEN`].
    pub log: VecDeque<String>,
    /// The newest line as received, and how many times in a row it came.
    last_line: String,
    repeats: usize,
    pub outcome: Option<RunOutcome>,
    pub started: Instant,
    pub finished: Option<Instant>,
}

impl RunView {
    pub fn new(plan: &Plan) -> RunView {
        RunView {
            service: plan.service.clone(),
            kind: "rollback".to_owned(),
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
            last_line: String::new(),
            repeats: 0,
            outcome: None,
            started: Instant::now(),
            finished: None,
        }
    }

    /// Returns the run view of a backup taken from the dashboard.
    pub fn backup(service: &str) -> RunView {
        RunView {
            service: service.to_owned(),
            kind: "backup".to_owned(),
            from: String::new(),
            to: String::new(),
            steps: vec![StepView {
                step: StepKind::SafetyBackup,
                description: format!("back up the data of `{service}`"),
                status: StepStatus::Pending,
                detail: String::new(),
            }],
            log: VecDeque::new(),
            last_line: String::new(),
            repeats: 0,
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

    /// Appends an output line. A line equal to the one before it only
    /// counts up a `(×N)` mark, so repeated probe results do not push the
    /// restart command's output out of sight.
    pub fn push_log(&mut self, line: String) {
        if self.repeats > 0 && line == self.last_line {
            self.repeats += 1;
            if let Some(last) = self.log.back_mut() {
                *last = format!("{line} (×{})", self.repeats);
            }
            return;
        }
        if self.log.len() == RUN_LOG_LEN {
            self.log.pop_front();
        }
        self.log.push_back(line.clone());
        self.last_line = line;
        self.repeats = 1;
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
    /// Kind of the run the open plan dialog starts: a rollback or an undo.
    pub pending_kind: RunKind,
    /// Service whose rollback key was pressed before its history arrived.
    /// Its plan opens when the history does, unless a key is pressed first.
    pub rollback_when_loaded: Option<String>,
    /// Reason for the run, written in the plan dialog.
    pub reason: Input,
    /// Lines the run pane is scrolled up from its newest line.
    pub run_scroll: usize,
    /// Services with an unfinished run, and its one-line summary.
    pub unfinished: Vec<(String, String)>,
    /// Finished runs from the audit log, newest first.
    pub history: Vec<AuditEntry>,
    /// Rows the history pane is scrolled down from the newest run.
    pub history_scroll: usize,
    /// Index into the selected service's backups, when one is picked.
    pub backup_cursor: Option<usize>,
    /// Backup ids whose hash was checked this session, and the result.
    pub verified: HashMap<String, bool>,
    pub should_quit: bool,
    /// Index into `services` by name, so that folding an engine event costs
    /// the same with ten services or ten thousand.
    positions: HashMap<String, usize>,
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
                    samples: History::new(),
                    versions: VersionsView::Loading,
                    history_trimmed: false,
                    backups: if spec.backup.is_some() {
                        BackupsView::Loading
                    } else {
                        BackupsView::NotConfigured
                    },
                    strategy: spec.rollback.strategy,
                    backup_max_age: spec.backup.as_ref().and_then(|backup| backup.max_age),
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
            pending_kind: RunKind::Rollback,
            rollback_when_loaded: None,
            reason: Input::default(),
            run_scroll: 0,
            unfinished: Vec::new(),
            history: Vec::new(),
            history_scroll: 0,
            backup_cursor: None,
            verified: HashMap::new(),
            should_quit: false,
            positions: config
                .services
                .iter()
                .enumerate()
                .map(|(index, spec)| (spec.name.clone(), index))
                .collect(),
        }
    }

    /// Returns the indices of the services that match the filter, in order.
    pub fn visible(&self) -> Vec<usize> {
        self.visible_indices().collect()
    }

    /// Iterates over the indices of the services that match the filter, in
    /// order. With an empty filter it skips the name checks.
    pub fn visible_indices(&self) -> impl Iterator<Item = usize> + '_ {
        let needle = self.filter.value().to_lowercase();
        self.services
            .iter()
            .enumerate()
            .filter(move |(_, service)| {
                needle.is_empty() || service.name.to_lowercase().contains(&needle)
            })
            .map(|(index, _)| index)
    }

    /// Returns the indices of at most `rows` services that match the filter,
    /// starting at match number `offset`. Without a filter it takes no time
    /// for the services before `offset`.
    pub fn visible_page(&self, offset: usize, rows: usize) -> Vec<usize> {
        if self.filter.value().is_empty() {
            return (offset..self.services.len()).take(rows).collect();
        }
        self.visible_indices().skip(offset).take(rows).collect()
    }

    /// Counts the services that match the filter and returns the position of
    /// the selected service among them, `None` when it does not match.
    /// Without a filter this takes constant time, so a frame of ten thousand
    /// services costs no more than one of a hundred.
    pub fn visible_count(&self) -> (usize, Option<usize>) {
        if self.filter.value().is_empty() {
            let count = self.services.len();
            return (count, (self.selected < count).then_some(self.selected));
        }
        let mut count = 0;
        let mut position = None;
        for index in self.visible_indices() {
            if index == self.selected {
                position = Some(count);
            }
            count += 1;
        }
        (count, position)
    }

    /// Returns the selected service, or `None` when the filter hides it.
    pub fn selected_service(&self) -> Option<&ServiceView> {
        let service = self.services.get(self.selected)?;
        let needle = self.filter.value();
        let shown =
            needle.is_empty() || service.name.to_lowercase().contains(&needle.to_lowercase());
        shown.then_some(service)
    }

    pub fn service_mut(&mut self, name: &str) -> Option<&mut ServiceView> {
        let indexed = self
            .positions
            .get(name)
            .copied()
            .filter(|&index| self.services.get(index).is_some_and(|s| s.name == name));
        match indexed {
            Some(index) => self.services.get_mut(index),
            // `services` is public, so a caller may have reordered it.
            None => self
                .services
                .iter_mut()
                .find(|service| service.name == name),
        }
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
