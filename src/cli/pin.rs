//! `rewind pin SERVICE BACKUP_ID [--unpin]`: marks a backup so that
//! retention never removes it, or clears the mark.

use crate::cli::args::PinArgs;
use crate::config::Config;

use super::catalog;
use super::execution;

/// Pins or unpins the backup. Returns 0 when done, 2 for an invalid id or
/// a service without a backup table, 3 for an unknown backup or in
/// read-only mode, 1 when the manifest cannot be written.
pub async fn run(config: &Config, args: &PinArgs, read_only: bool) -> color_eyre::Result<i32> {
    if let Some(code) = execution::refuse_read_only(config, read_only, "pin") {
        return Ok(code);
    }
    let target = match catalog::open(config, &args.service) {
        Ok(target) => target,
        Err(code) => return Ok(code),
    };
    let name = &target.spec.name;
    let manifest = match target.catalog.pin(&args.backup_id, !args.unpin).await {
        Ok(manifest) => manifest,
        Err(error) => {
            catalog::report(&error);
            return Ok(catalog::lookup_exit_code(&error));
        }
    };
    if manifest.pinned {
        println!(
            "pinned backup {} of {name}: retention never removes it",
            manifest.id
        );
    } else {
        println!(
            "unpinned backup {} of {name}: retention removes it once {} newer unpinned backups exist",
            manifest.id, target.backup.keep
        );
    }
    Ok(super::EXIT_OK)
}
