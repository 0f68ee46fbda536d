//! Building a rollback plan: from and to versions, the commits the move
//! undoes (or applies, when going forward), the backup a data restore
//! uses and what it discards, and the ordered steps.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::{ServiceSpec, Strategy};
use crate::engine::backup::{BackupError, Catalog, Manifest};
use crate::engine::versions::{self, HistoryEntry, VersionInfo, VersionsError};

use super::StepKind;

/// Number of history entries read to name the from and to versions.
const HISTORY_LIMIT: usize = 200;

/// A version as a plan shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRef {
    pub commit: String,
    pub short: String,
    /// The tag of the commit, else its short id.
    pub label: String,
}

/// One step as a plan shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedStep {
    pub step: StepKind,
    pub description: String,
}

/// Rollback of one service as shown before anything runs: versions,
/// commits and steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub service: String,
    pub strategy: Strategy,
    pub from: VersionRef,
    pub to: VersionRef,
    /// Commits deployed now that the target does not contain, newest first.
    pub undone: Vec<HistoryEntry>,
    /// Commits the target contains that are not deployed now (a move
    /// forward), newest first.
    pub applied: Vec<HistoryEntry>,
    /// Uncommitted changes that will make the run stop before any change.
    pub dirty: Vec<String>,
    pub steps: Vec<PlannedStep>,
    /// The backup a data strategy restores.
    #[serde(default)]
    pub restore: Option<BackupRef>,
}

/// A backup as a plan shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupRef {
    pub id: String,
    /// When the backup was taken, RFC 3339 in UTC. Data written after this
    /// time is discarded by the restore.
    pub created_at: String,
    /// The commit deployed when it was taken, when known.
    pub commit: Option<String>,
    /// The tag or short id of that commit.
    pub label: String,
}

/// Request for a rollback plan: target, strategy and backup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanRequest {
    /// Target version: a commit id, tag, branch or `HEAD~N`. `None` keeps
    /// the deployed version, which only the `data` strategy allows.
    pub target: Option<String>,
    /// `None` takes the strategy from the service's configuration.
    pub strategy: Option<Strategy>,
    /// Backup to restore. `None` picks the newest one taken while the
    /// target version was deployed.
    pub backup: Option<String>,
}

/// Reasons a plan cannot be built. All of them mean nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    #[error(transparent)]
    Versions(#[from] VersionsError),
    #[error("service `{service}` already runs `{label}`")]
    AlreadyAt { service: String, label: String },
    #[error("strategy `{strategy}` needs a target version for `{service}`")]
    TargetMissing {
        service: String,
        strategy: &'static str,
    },
    #[error("strategy `data` keeps the code of `{service}`, so it takes no target version")]
    TargetWithData { service: String },
    #[error("`{service}` has no backup table, so strategy `{strategy}` cannot restore its data")]
    NoBackupTable {
        service: String,
        strategy: &'static str,
    },
    #[error("no backup of `{service}` was taken while `{label}` was deployed")]
    NoBackupAt { service: String, label: String },
    #[error(transparent)]
    Backup(#[from] BackupError),
}

impl RollbackError {
    /// Returns how to fix the error, when there is a known fix.
    pub fn hint(&self, service: &str) -> Option<String> {
        match self {
            RollbackError::Versions(VersionsError::UnknownRevision { .. }) => Some(format!(
                "run `rewind versions {service}` to list versions; a commit id, a tag or \
                 HEAD~N is accepted"
            )),
            RollbackError::Versions(VersionsError::Dirty { .. }) => {
                Some("commit, stash or discard the changes, then retry".to_owned())
            }
            RollbackError::AlreadyAt { .. } => Some(format!(
                "pick another version from `rewind versions {service}`"
            )),
            RollbackError::TargetMissing { .. } => {
                Some("pass `--to REV`, or `--strategy data` to restore data only".to_owned())
            }
            RollbackError::TargetWithData { .. } => {
                Some("leave out `--to`, or use `--strategy code+data`".to_owned())
            }
            RollbackError::NoBackupTable { .. } => Some(format!(
                "add a `[services.{service}.backup]` table, or use `--strategy code`"
            )),
            RollbackError::NoBackupAt { .. } => Some(format!(
                "name one with `--backup ID`; `rewind backups {service}` lists them"
            )),
            RollbackError::Backup(error) => error.hint(),
            _ => None,
        }
    }
}

/// Builds the plan that moves `spec` from its deployed version to `rev`
/// with the code strategy, whatever strategy the configuration sets.
pub fn build_plan(spec: &ServiceSpec, rev: &str) -> Result<Plan, RollbackError> {
    let request = PlanRequest {
        target: Some(rev.to_owned()),
        strategy: Some(Strategy::Code),
        backup: None,
    };
    plan_rollback(spec, Path::new(""), &request)
}

/// Builds the plan for `request`. Data strategies read the backup catalog
/// under `state_dir` to pick the backup to restore.
pub fn plan_rollback(
    spec: &ServiceSpec,
    state_dir: &Path,
    request: &PlanRequest,
) -> Result<Plan, RollbackError> {
    let strategy = request.strategy.unwrap_or(spec.rollback.strategy);
    let dir = &spec.deploy_dir;
    let info = versions::read(dir, spec.branch.as_deref(), HISTORY_LIMIT)?;
    let target = match (&request.target, strategy) {
        (Some(rev), Strategy::Data) => {
            if versions::resolve(dir, rev)? != info.commit {
                return Err(RollbackError::TargetWithData {
                    service: spec.name.clone(),
                });
            }
            info.commit.clone()
        }
        (Some(rev), _) => versions::resolve(dir, rev)?,
        (None, Strategy::Data) => info.commit.clone(),
        (None, strategy) => {
            return Err(RollbackError::TargetMissing {
                service: spec.name.clone(),
                strategy: strategy.as_str(),
            });
        }
    };

    let from = VersionRef {
        commit: info.commit.clone(),
        short: info.short.clone(),
        label: info.label(),
    };
    let to = version_ref(&info, &target);
    if strategy.changes_code() && from.commit == to.commit {
        return Err(RollbackError::AlreadyAt {
            service: spec.name.clone(),
            label: to.label,
        });
    }
    let restore = if strategy.restores_data() {
        Some(choose_backup(
            spec, state_dir, &info, &to, request, strategy,
        )?)
    } else {
        None
    };

    let undone = versions::commits_between(dir, &from.commit, &to.commit)?;
    let applied = versions::commits_between(dir, &to.commit, &from.commit)?;
    let steps = planned_steps(spec, strategy, &to, restore.as_ref());

    Ok(Plan {
        service: spec.name.clone(),
        strategy,
        from,
        to,
        undone,
        applied,
        dirty: info.dirty,
        steps,
        restore,
    })
}

/// Returns the backup named in the request, else the newest one taken
/// while `to` was deployed.
fn choose_backup(
    spec: &ServiceSpec,
    state_dir: &Path,
    info: &VersionInfo,
    to: &VersionRef,
    request: &PlanRequest,
    strategy: Strategy,
) -> Result<BackupRef, RollbackError> {
    if spec.backup.is_none() {
        return Err(RollbackError::NoBackupTable {
            service: spec.name.clone(),
            strategy: strategy.as_str(),
        });
    }
    let catalog = Catalog::open(state_dir, &spec.name)?;
    let manifest = match &request.backup {
        Some(id) => catalog.get(id)?,
        None => catalog
            .list()?
            .into_iter()
            .find(|manifest| manifest.commit.as_deref() == Some(to.commit.as_str()))
            .ok_or_else(|| RollbackError::NoBackupAt {
                service: spec.name.clone(),
                label: to.label.clone(),
            })?,
    };
    Ok(backup_ref(info, &manifest))
}

fn backup_ref(info: &VersionInfo, manifest: &Manifest) -> BackupRef {
    let label = match &manifest.commit {
        Some(commit) => version_ref(info, commit).label,
        None => "unknown version".to_owned(),
    };
    BackupRef {
        id: manifest.id.as_str().to_owned(),
        created_at: humantime::format_rfc3339_seconds(manifest.created_at).to_string(),
        commit: manifest.commit.clone(),
        label,
    }
}

fn version_ref(info: &VersionInfo, commit: &str) -> VersionRef {
    let entry = info.history.iter().find(|entry| entry.commit == commit);
    let short = entry.map_or_else(
        || commit[..7.min(commit.len())].to_owned(),
        |e| e.short.clone(),
    );
    let label = entry
        .and_then(|entry| entry.tags.first().cloned())
        .unwrap_or_else(|| short.clone());
    VersionRef {
        commit: commit.to_owned(),
        short,
        label,
    }
}

fn planned_steps(
    spec: &ServiceSpec,
    strategy: Strategy,
    to: &VersionRef,
    restore: Option<&BackupRef>,
) -> Vec<PlannedStep> {
    let health = &spec.health;
    let probes = match health.success_threshold {
        1 => "1 passing probe".to_owned(),
        n => format!("{n} passing probes in a row"),
    };
    let step = |step, description: String| PlannedStep { step, description };
    let mut steps = vec![
        step(StepKind::Lock, format!("take the lock of `{}`", spec.name)),
        step(
            StepKind::CheckClean,
            format!(
                "check `{}` has no uncommitted changes",
                spec.deploy_dir.display()
            ),
        ),
    ];
    if restore.is_some() {
        steps.push(step(
            StepKind::SafetyBackup,
            format!(
                "back up the current data of `{}` first, so the restore can be undone",
                spec.name
            ),
        ));
    }
    if strategy.changes_code() {
        steps.push(step(
            StepKind::Checkout,
            format!("check out {} ({})", to.label, to.short),
        ));
    }
    if let Some(backup) = restore {
        steps.push(step(
            StepKind::RestoreData,
            format!(
                "restore backup {} taken at {} ({}); data written after it is discarded",
                backup.id, backup.created_at, backup.label
            ),
        ));
    }
    steps.push(step(
        StepKind::Restart,
        format!(
            "run `{}` (timeout {})",
            spec.restart.command.join(" "),
            humantime::format_duration(spec.restart.timeout)
        ),
    ));
    steps.push(step(
        StepKind::VerifyHealth,
        format!(
            "wait for {probes} of {} within {}",
            crate::engine::health::redact_url(&health.url),
            humantime::format_duration(spec.rollback.verify_timeout)
        ),
    ));
    if !spec.rollback.settle.is_zero() {
        steps.push(step(
            StepKind::Settle,
            format!(
                "watch health stay passing for {}",
                humantime::format_duration(spec.rollback.settle)
            ),
        ));
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::rollback::test_support::{repo, spec};

    #[test]
    fn plan_lists_undone_commits_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let ids = repo(dir.path(), &["v1", "v2", "v3", "v4"]);
        let plan = build_plan(&spec(dir.path()), "v2").unwrap();
        let undone: Vec<&str> = plan.undone.iter().map(|e| e.commit.as_str()).collect();

        assert_eq!(plan.from.label, "v4");
        assert_eq!(plan.from.commit, ids[3]);
        assert_eq!(plan.to.label, "v2");
        assert_eq!(plan.to.commit, ids[1]);
        assert_eq!(undone, [ids[3].as_str(), ids[2].as_str()]);
        assert!(plan.applied.is_empty());
    }

    #[test]
    fn plan_steps_run_in_fixed_order() {
        let dir = tempfile::tempdir().unwrap();
        repo(dir.path(), &["v1", "v2"]);
        let plan = build_plan(&spec(dir.path()), "HEAD~1").unwrap();
        let steps: Vec<StepKind> = plan.steps.iter().map(|s| s.step).collect();

        assert_eq!(
            steps,
            [
                StepKind::Lock,
                StepKind::CheckClean,
                StepKind::Checkout,
                StepKind::Restart,
                StepKind::VerifyHealth
            ]
        );
        assert_eq!(
            plan.steps[3].description,
            "run `systemctl restart orders` (timeout 30s)"
        );
        assert_eq!(
            plan.steps[4].description,
            "wait for 2 passing probes in a row of http://127.0.0.1:9/health within 20s"
        );
    }

    #[test]
    fn plan_forward_lists_applied_commits() {
        let dir = tempfile::tempdir().unwrap();
        let ids = repo(dir.path(), &["v1", "v2", "v3"]);
        crate::engine::versions::checkout(dir.path(), "v1", Some("main")).unwrap();
        let plan = build_plan(&spec(dir.path()), "v3").unwrap();
        let applied: Vec<&str> = plan.applied.iter().map(|e| e.commit.as_str()).collect();

        assert!(plan.undone.is_empty());
        assert_eq!(applied, [ids[2].as_str(), ids[1].as_str()]);
    }

    #[test]
    fn plan_skips_service_already_at_target() {
        let dir = tempfile::tempdir().unwrap();
        repo(dir.path(), &["v1", "v2"]);
        let error = build_plan(&spec(dir.path()), "v2").unwrap_err();

        assert_eq!(error.to_string(), "service `orders` already runs `v2`");
    }

    #[test]
    fn plan_reports_dirty_files() {
        let dir = tempfile::tempdir().unwrap();
        repo(dir.path(), &["v1", "v2"]);
        std::fs::write(dir.path().join("release.txt"), "edited").unwrap();
        let plan = build_plan(&spec(dir.path()), "v1").unwrap();

        assert_eq!(plan.dirty, ["release.txt"]);
    }

    #[test]
    fn plan_rejects_unknown_revision_with_hint() {
        let dir = tempfile::tempdir().unwrap();
        repo(dir.path(), &["v1", "v2"]);
        let error = build_plan(&spec(dir.path()), "v7").unwrap_err();

        assert!(
            error.to_string().starts_with("unknown revision `v7`"),
            "{error}"
        );
        assert_eq!(
            error.hint("orders").unwrap(),
            "run `rewind versions orders` to list versions; a commit id, a tag or HEAD~N is accepted"
        );
    }
}
