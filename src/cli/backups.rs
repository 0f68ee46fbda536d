//! `rewind backups SERVICE`: the backups of one service, newest first.

use std::time::SystemTime;

use serde::Serialize;

use crate::cli::args::BackupsArgs;
use crate::config::Config;

use super::catalog::{self, BackupJson, VersionLabels};

/// The JSON shape of `rewind backups --json`.
#[derive(Serialize)]
struct BackupsJson<'a> {
    service: &'a str,
    /// Newest first.
    backups: Vec<BackupJson>,
}

/// Prints the backups as a table or as JSON.
pub fn run(config: &Config, args: &BackupsArgs) -> color_eyre::Result<i32> {
    let target = match catalog::open(config, &args.service) {
        Ok(target) => target,
        Err(code) => return Ok(code),
    };
    let manifests = match target.catalog.list() {
        Ok(manifests) => manifests,
        Err(error) => {
            catalog::report(&error);
            return Ok(super::EXIT_FAILED);
        }
    };
    let labels = VersionLabels::read(target.spec);
    let name = &target.spec.name;

    if args.json {
        let json = BackupsJson {
            service: name,
            backups: manifests
                .iter()
                .map(|manifest| BackupJson::new(&target.catalog, manifest, &labels))
                .collect(),
        };
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(super::EXIT_OK);
    }

    if manifests.is_empty() {
        println!("no backups of {name} yet; take one with `rewind backup {name}`");
        return Ok(super::EXIT_OK);
    }
    println!(
        "{name}: {} backups in `{}`, newest first; retention keeps {}",
        manifests.len(),
        target.catalog.dir().display(),
        target.backup.keep
    );
    let now = SystemTime::now();
    let rows: Vec<[String; 6]> = manifests
        .iter()
        .map(|manifest| {
            [
                manifest.id.to_string(),
                catalog::format_age(manifest.age(now)),
                catalog::format_size(manifest.size),
                labels
                    .label(manifest.commit.as_deref())
                    .unwrap_or_else(|| "-".to_owned()),
                if manifest.pinned { "pinned" } else { "" }.to_owned(),
                manifest.driver.to_string(),
            ]
        })
        .collect();
    let header = ["ID", "AGE", "SIZE", "VERSION", "PINNED", "DRIVER"].map(str::to_owned);
    let mut widths = header.clone().map(|title| title.len());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let line = format!(
            "{:<w0$}  {:>w1$}  {:>w2$}  {:<w3$}  {:<w4$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            row[5],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
            w4 = widths[4],
        );
        println!("{}", line.trim_end());
    }
    Ok(super::EXIT_OK)
}
