//! `rewind history`: finished runs from the audit log, newest first.

use crate::cli::args::HistoryArgs;
use crate::config::Config;
use crate::engine::coord::audit;
use crate::engine::rollback::RunOutcome;
use crate::engine::rollback::journal::RunKind;

/// Prints the audit log as a table or as JSON.
pub fn run(config: &Config, args: &HistoryArgs) -> color_eyre::Result<i32> {
    if let Some(service) = &args.service
        && let Err(error) = config.require(service)
    {
        return Ok(super::unknown_service(error));
    }
    let mut entries = audit::read(&config.state_dir, args.service.as_deref())?;
    entries.truncate(args.limit);

    if args.json {
        let json = serde_json::json!({ "runs": entries });
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(super::EXIT_OK);
    }
    if entries.is_empty() {
        println!(
            "no runs recorded in `{}`",
            audit::path(&config.state_dir).display()
        );
        return Ok(super::EXIT_OK);
    }
    println!(
        "{:<20} {:<12} {:<8} {:<21} {:<10} {:>7}  BY / REASON",
        "FINISHED", "SERVICE", "KIND", "VERSIONS", "OUTCOME", "TIME"
    );
    for entry in &entries {
        let kind = match entry.kind {
            RunKind::Rollback => "rollback",
            RunKind::Undo => "undo",
            RunKind::Restore => "restore",
        };
        let outcome = match entry.outcome {
            RunOutcome::Succeeded => "succeeded",
            RunOutcome::Reverted { .. } => "reverted",
            RunOutcome::RevertFailed { .. } => "REVERT FAILED",
            RunOutcome::Refused { .. } => "refused",
        };
        let versions = format!("{} -> {}", entry.from.label, entry.to.label);
        let reason = entry
            .reason
            .as_deref()
            .map_or(String::new(), |reason| format!(": {reason}"));
        println!(
            "{:<20} {:<12} {:<8} {:<21} {:<10} {:>6.1}s  {}@{}{reason}",
            entry
                .finished_at
                .get(..19)
                .unwrap_or(&entry.finished_at)
                .replace('T', " "),
            entry.service,
            kind,
            versions,
            outcome,
            entry.duration_ms as f64 / 1000.0,
            entry.user,
            entry.host,
        );
    }
    Ok(super::EXIT_OK)
}
