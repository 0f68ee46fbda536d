//! `rewind backup SERVICE`: takes a backup of a service's data now,
//! recording the deployed commit, then removes the backups that retention
//! no longer keeps.

use serde::Serialize;

use crate::cli::args::BackupArgs;
use crate::config::Config;
use crate::engine::backup::BackupId;
use crate::engine::rollback::journal;
use crate::engine::versions;

use super::catalog::{self, BackupJson, Target, VersionLabels};
use super::execution;

/// The JSON shape of `rewind backup --json`.
#[derive(Serialize)]
struct BackupTakenJson<'a> {
    service: &'a str,
    backup: BackupJson,
    /// Ids of the backups that retention removed afterwards.
    pruned: Vec<String>,
}

/// Takes the backup and prunes. Returns 0 when the backup was taken, 1
/// when it failed, 2 for a service without a backup table, 3 in read-only
/// mode.
pub async fn run(config: &Config, args: &BackupArgs, read_only: bool) -> color_eyre::Result<i32> {
    if let Some(code) = execution::refuse_read_only(config, read_only, "backup") {
        return Ok(code);
    }
    let target = match catalog::open(config, &args.service) {
        Ok(target) => target,
        Err(code) => return Ok(code),
    };
    let spec = target.spec;
    let commit = match versions::head(&spec.deploy_dir) {
        Ok(commit) => Some(commit),
        Err(error) => {
            eprintln!(
                "warning: cannot read the deployed commit of `{}`: {}; the backup records no commit",
                spec.name,
                catalog::with_causes(&error)
            );
            None
        }
    };
    let labels = VersionLabels::read(spec);
    let version = labels
        .label(commit.as_deref())
        .unwrap_or_else(|| "an unknown version".to_owned());

    if !args.json {
        println!(
            "backing up {} ({}), deployed at {version} ...",
            spec.name,
            catalog::describe_source(target.backup)
        );
    }
    let created = if args.json {
        target
            .catalog
            .create(target.backup, commit.as_deref(), |_| {})
            .await
    } else {
        let progress = catalog::print_progress("written");
        target
            .catalog
            .create(target.backup, commit.as_deref(), progress)
            .await
    };
    let manifest = match created {
        Ok(manifest) => manifest,
        Err(error) => {
            catalog::report(&error);
            eprintln!("no backup was taken; the catalog is as it was");
            return Ok(super::EXIT_FAILED);
        }
    };
    if !args.json {
        println!(
            "backup {} taken: {} in {}",
            manifest.id,
            catalog::format_size(manifest.size),
            humantime::format_duration(manifest.duration)
        );
    }

    let pruned = prune(config, &target, args.json).await;
    if args.json {
        let json = BackupTakenJson {
            service: &spec.name,
            backup: BackupJson::new(&target.catalog, &manifest, &labels),
            pruned: pruned.iter().map(ToString::to_string).collect(),
        };
        println!("{}", serde_json::to_string_pretty(&json)?);
    }
    Ok(super::EXIT_OK)
}

/// Removes the backups beyond `keep`, except pinned ones and those an
/// unfinished run needs. A failure only warns, because the new backup is
/// already complete. Returns the removed ids.
async fn prune(config: &Config, target: &Target<'_>, json: bool) -> Vec<BackupId> {
    let service = &target.spec.name;
    let protected = match journal::read(&config.state_dir, service) {
        Ok(Some(state)) => state.backup_ids(),
        Ok(None) => Vec::new(),
        Err(error) => {
            eprintln!(
                "warning: kept every backup of `{service}`: cannot read its run journal: {}",
                catalog::with_causes(&error)
            );
            return Vec::new();
        }
    };
    let keep = target.backup.keep;
    match target.catalog.prune(keep, &protected).await {
        Ok(removed) => {
            if !json && !removed.is_empty() {
                let ids: Vec<&str> = removed.iter().map(BackupId::as_str).collect();
                let noun = if removed.len() == 1 {
                    "backup"
                } else {
                    "backups"
                };
                println!(
                    "removed {} {noun} beyond keep = {keep}: {}",
                    removed.len(),
                    ids.join(", ")
                );
            }
            removed
        }
        Err(error) => {
            eprintln!(
                "warning: removing old backups failed: {}",
                catalog::with_causes(&error)
            );
            if let Some(hint) = error.hint() {
                eprintln!("hint: {hint}");
            }
            Vec::new()
        }
    }
}
