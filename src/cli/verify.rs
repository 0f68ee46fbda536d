//! `rewind verify [SERVICE]`: recomputes the size and hash of every backup
//! and compares them with its manifest. A manifest that cannot be read
//! counts as damaged too.

use std::fs;
use std::io;
use std::path::PathBuf;

use crate::cli::args::VerifyArgs;
use crate::config::Config;
use crate::engine::backup::{BackupError, BackupId};

use super::catalog::{self, Target};

/// A backup that failed verification.
struct Damaged {
    service: String,
    /// The data file, or the manifest when that cannot be read.
    file: PathBuf,
}

/// Verifies the backups of one service, or of every service with a backup
/// table. Returns 0 when all are intact, 1 when any is damaged, 2 for an
/// unknown service or one without a backup table.
pub async fn run(config: &Config, args: &VerifyArgs) -> color_eyre::Result<i32> {
    let mut targets = Vec::new();
    match &args.service {
        Some(name) => match catalog::open(config, name) {
            Ok(target) => targets.push(target),
            Err(code) => return Ok(code),
        },
        None => {
            for spec in config.services.iter().filter(|spec| spec.backup.is_some()) {
                match catalog::open(config, &spec.name) {
                    Ok(target) => targets.push(target),
                    Err(code) => return Ok(code),
                }
            }
        }
    }
    if targets.is_empty() {
        println!(
            "no service in `{}` has a backup table; nothing to verify",
            config.path.display()
        );
        return Ok(super::EXIT_OK);
    }

    let name_width = targets
        .iter()
        .map(|target| target.spec.name.len())
        .max()
        .unwrap_or(0);
    let mut checked = 0;
    let mut damaged = Vec::new();
    for target in &targets {
        let ids = match manifest_ids(target) {
            Ok(ids) => ids,
            Err(error) => {
                catalog::report(&error);
                return Ok(super::EXIT_FAILED);
            }
        };
        for id in ids {
            checked += 1;
            if let Some(file) = verify_one(target, &id, name_width).await {
                damaged.push(Damaged {
                    service: target.spec.name.clone(),
                    file,
                });
            }
        }
    }

    println!(
        "verified {} of {}: {} intact, {} damaged",
        count(checked, "backup"),
        count(targets.len(), "service"),
        checked - damaged.len(),
        damaged.len()
    );
    if damaged.is_empty() {
        return Ok(super::EXIT_OK);
    }
    println!("damaged files:");
    for entry in &damaged {
        println!("  {}  {}", entry.service, entry.file.display());
    }
    eprintln!("error: {} damaged", count(damaged.len(), "backup"));
    eprintln!(
        "hint: restores refuse damaged backups; take a fresh one with `rewind backup SERVICE` \
         and delete each damaged file with its `.json` manifest"
    );
    Ok(super::EXIT_FAILED)
}

/// Returns the ids of every manifest file in the catalog: the backups
/// `Catalog::list` returns, newest first, then the manifests it skips
/// because they are damaged.
fn manifest_ids(target: &Target) -> Result<Vec<BackupId>, BackupError> {
    let mut ids: Vec<BackupId> = target
        .catalog
        .list()?
        .into_iter()
        .map(|manifest| manifest.id)
        .collect();
    let mut damaged: Vec<BackupId> = manifest_files(target)?
        .into_iter()
        .filter(|id| !ids.contains(id))
        .collect();
    // Ids start with the UTC time they were taken, so they sort by age.
    damaged.sort_by(|a, b| b.cmp(a));
    ids.extend(damaged);
    Ok(ids)
}

/// Returns the ids of the `ID.json` files in the catalog folder.
fn manifest_files(target: &Target) -> Result<Vec<BackupId>, BackupError> {
    let dir = target.catalog.dir();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(BackupError::io("read folder", dir, source)),
    };
    let mut ids = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| BackupError::io("read folder", dir, source))?;
        let name = entry.file_name();
        let id = name
            .to_str()
            .and_then(|name| name.strip_suffix(".json"))
            .and_then(|stem| BackupId::parse(stem).ok());
        if let Some(id) = id {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// Verifies one backup and prints its line, with the service name padded
/// to `name_width`. Returns the damaged file, or `None` when the backup is
/// intact.
async fn verify_one(target: &Target<'_>, id: &BackupId, name_width: usize) -> Option<PathBuf> {
    let service = format!("{:<name_width$}", target.spec.name);
    let manifest = match target.catalog.get(id.as_str()) {
        Ok(manifest) => manifest,
        Err(error) => {
            let file = target.catalog.dir().join(format!("{id}.json"));
            println!("DAMAGED  {service}  {id}  {}", catalog::with_causes(&error));
            return Some(file);
        }
    };
    let file = target.catalog.data_path(&manifest);
    match target.catalog.verify(id.as_str()).await {
        Ok(()) => {
            println!(
                "ok       {service}  {id}  {:>9}  {}",
                catalog::format_size(manifest.size),
                file.display()
            );
            None
        }
        Err(error) => {
            println!("DAMAGED  {service}  {id}  {}", catalog::with_causes(&error));
            Some(file)
        }
    }
}

/// Returns `number` with `noun`, plural unless the number is 1.
fn count(number: usize, noun: &str) -> String {
    if number == 1 {
        format!("1 {noun}")
    } else {
        format!("{number} {noun}s")
    }
}
