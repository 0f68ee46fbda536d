//! `rewind restore SERVICE BACKUP_ID`: replaces a service's data with one
//! of its backups. The backup is checked before anything changes, a safety
//! backup of the current data is taken first, and a failed restore puts
//! the safety backup back. The code and the service process are left
//! alone: rolling back with the `data` strategy also restarts the service
//! and checks its health. Every restore that was confirmed is recorded in
//! the audit log, so `rewind history` lists it and `rewind undo` puts the
//! safety backup back.

use std::time::SystemTime;

use crate::cli::args::RestoreArgs;
use crate::config::Config;
use crate::engine::backup::Manifest;
use crate::engine::coord::audit::{self, AuditEntry};
use crate::engine::coord::{Holder, ServiceLock};
use crate::engine::rollback::journal::{self, RunKind};
use crate::engine::rollback::{RunOutcome, VersionRef};
use crate::engine::versions;

use super::catalog::{self, Target, VersionLabels};
use super::execution;

/// Checks, confirms and runs the restore. Returns 0 when done, 1 when the
/// restore failed (the safety backup was put back, or the output reports
/// `REVERT FAILED`), 2 for an invalid id or a service without a backup
/// table, 3 when refused before any change.
pub async fn run(config: &Config, args: &RestoreArgs, read_only: bool) -> color_eyre::Result<i32> {
    if let Some(code) = execution::refuse_read_only(config, read_only, "restore") {
        return Ok(code);
    }
    let target = match catalog::open(config, &args.service) {
        Ok(target) => target,
        Err(code) => return Ok(code),
    };
    let name = &target.spec.name;
    if let Err(error) = target.catalog.get(&args.backup_id) {
        catalog::report(&error);
        return Ok(catalog::lookup_exit_code(&error));
    }
    match journal::read(&config.state_dir, name) {
        Ok(None) => {}
        Ok(Some(state)) => {
            eprintln!("error: {}", state.summary());
            eprintln!("hint: finish it first with `rewind recover {name} --resume` or `--abort`");
            return Ok(super::EXIT_REFUSED);
        }
        Err(error) => {
            eprintln!("error: {}", catalog::with_causes(&error));
            return Ok(super::EXIT_REFUSED);
        }
    }
    let _lock = match ServiceLock::acquire(&config.state_dir, name) {
        Ok(lock) => lock,
        Err(error) => {
            eprintln!("error: {error}");
            if let Some(hint) = error.hint() {
                eprintln!("hint: {hint}");
            }
            return Ok(super::EXIT_REFUSED);
        }
    };

    let checked = target
        .catalog
        .check_restore(&args.backup_id, target.backup, |_| {})
        .await;
    let manifest = match checked {
        Ok(manifest) => manifest,
        Err(error) => {
            catalog::report(&error);
            eprintln!("restore rejected: nothing was changed");
            return Ok(super::EXIT_REFUSED);
        }
    };
    let commit = versions::head(&target.spec.deploy_dir).ok();
    let labels = VersionLabels::read(target.spec);
    print!("{}", render(&target, &manifest, commit.as_deref(), &labels));
    if let Some(code) = execution::confirm(args.yes, "restore")? {
        return Ok(code);
    }
    let started = SystemTime::now();
    let finished = execute(&target, &manifest, commit.as_deref()).await;
    let version = version_ref(commit.as_deref(), &labels);
    let holder = Holder::current();
    let entry = AuditEntry {
        run_id: crate::engine::rollback::new_run_id(),
        service: name.clone(),
        kind: RunKind::Restore,
        user: holder.user,
        host: holder.host,
        reason: args.reason.clone(),
        from: version.clone(),
        to: version,
        outcome: finished.outcome,
        started_at: humantime::format_rfc3339_millis(started).to_string(),
        finished_at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        duration_ms: started.elapsed().unwrap_or_default().as_millis() as u64,
        backups: finished
            .safety
            .iter()
            .cloned()
            .chain([manifest.id.as_str().to_owned()])
            .collect(),
        safety_backup: finished.safety,
    };
    if let Err(error) = audit::append(&config.state_dir, &entry) {
        eprintln!("warning: {}", catalog::with_causes(&error));
    }
    Ok(finished.code)
}

/// The deployed version as the audit log records it; a restore leaves it
/// unchanged.
fn version_ref(commit: Option<&str>, labels: &VersionLabels) -> VersionRef {
    let commit = commit.unwrap_or_default();
    let short = commit[..7.min(commit.len())].to_owned();
    VersionRef {
        commit: commit.to_owned(),
        label: labels.label(Some(commit)).unwrap_or_else(|| short.clone()),
        short,
    }
}

/// The end of a confirmed restore: exit code, audited outcome and safety backup.
struct Finished {
    code: i32,
    outcome: RunOutcome,
    /// The safety backup, when it was taken.
    safety: Option<String>,
}

/// Describes what the restore will do, before it is confirmed.
fn render(
    target: &Target,
    manifest: &Manifest,
    commit: Option<&str>,
    labels: &VersionLabels,
) -> String {
    let name = &target.spec.name;
    let created = catalog::format_time(manifest.created_at);
    let age = catalog::format_age(manifest.age(SystemTime::now()));
    let backup_version = labels
        .label(manifest.commit.as_deref())
        .map_or_else(String::new, |label| format!(" while {label} was deployed"));
    let deployed = labels
        .label(commit)
        .unwrap_or_else(|| "an unknown version".to_owned());

    let mut text = format!("Restore the data of {name} from backup {}\n", manifest.id);
    text.push_str(&format!(
        "  backup    taken {created} ({age} ago){backup_version}\n"
    ));
    text.push_str(&format!(
        "            {}, {}, hash checked\n",
        manifest.driver,
        catalog::format_size(manifest.size)
    ));
    text.push_str(&format!(
        "  data      {}\n",
        catalog::describe_source(target.backup)
    ));
    text.push_str(&format!(
        "  deployed  {deployed}; the code stays and the service is not restarted\n\n"
    ));

    text.push_str("Steps:\n");
    text.push_str(&format!(
        "  1. safety backup: back up the current data of {name} first, so this restore can be undone\n"
    ));
    text.push_str(&format!(
        "  2. restore: replace the data with backup {}; data written after {created} is discarded\n",
        manifest.id
    ));
    text
}

/// Takes the safety backup, restores, and puts the safety backup back when
/// the restore fails.
async fn execute(target: &Target<'_>, manifest: &Manifest, commit: Option<&str>) -> Finished {
    let name = &target.spec.name;
    let catalog = &target.catalog;

    println!("[1/2] safety backup ...");
    let safety = match catalog
        .create(target.backup, commit, catalog::print_progress("written"))
        .await
    {
        Ok(safety) => safety,
        Err(error) => {
            println!(
                "      safety backup FAILED: {}",
                catalog::with_causes(&error)
            );
            if let Some(hint) = error.hint() {
                println!("hint: {hint}");
            }
            println!("failed: the data of {name} was not touched");
            return Finished {
                code: super::EXIT_FAILED,
                outcome: RunOutcome::Refused {
                    reason: format!("safety backup failed: {}", catalog::with_causes(&error)),
                },
                safety: None,
            };
        }
    };
    println!(
        "      safety backup ok: {} ({})",
        safety.id,
        catalog::format_size(safety.size)
    );

    println!("[2/2] restore ...");
    let restored = catalog
        .restore(
            manifest.id.as_str(),
            target.backup,
            catalog::print_progress("read"),
        )
        .await;
    let error = match restored {
        Ok(()) => {
            println!("      restore ok");
            println!(
                "done: the data of {name} is restored from backup {}; safety backup {} holds \
                 the data from before, and `rewind undo {name}` puts it back",
                manifest.id, safety.id
            );
            return Finished {
                code: super::EXIT_OK,
                outcome: RunOutcome::Succeeded,
                safety: Some(safety.id.as_str().to_owned()),
            };
        }
        Err(error) => error,
    };
    println!("      restore FAILED: {}", catalog::with_causes(&error));
    if let Some(hint) = error.hint() {
        println!("hint: {hint}");
    }

    println!("[revert] restore safety backup {} ...", safety.id);
    let reason = catalog::with_causes(&error);
    let outcome = match catalog
        .restore(
            safety.id.as_str(),
            target.backup,
            catalog::print_progress("read"),
        )
        .await
    {
        Ok(()) => {
            println!("      revert ok");
            println!("failed: {reason}");
            println!(
                "reverted: the data of {name} is back as it was, from safety backup {}",
                safety.id
            );
            RunOutcome::Reverted { reason }
        }
        Err(revert_error) => {
            let revert_error = catalog::with_causes(&revert_error);
            println!("failed: {reason}");
            println!("REVERT FAILED: {revert_error}");
            println!(
                "the data of {name} may be partly restored; safety backup {} holds the data \
                 from before: restore it with `rewind restore {name} {} --yes`",
                safety.id, safety.id
            );
            RunOutcome::RevertFailed {
                reason,
                revert_error,
            }
        }
    };
    Finished {
        code: super::EXIT_FAILED,
        outcome,
        safety: Some(safety.id.as_str().to_owned()),
    }
}
