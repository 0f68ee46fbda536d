//! `rewind versions SERVICE`: the first-parent history of the deploy branch.

use serde::Serialize;

use crate::cli::args::VersionsArgs;
use crate::config::Config;
use crate::engine::versions::{self, HistoryEntry};

/// The JSON shape of `rewind versions --json`.
#[derive(Serialize)]
struct VersionsJson<'a> {
    service: &'a str,
    branch: Option<&'a str>,
    history: &'a [HistoryEntry],
}

/// Prints the history of one service, newest first.
pub fn run(config: &Config, args: &VersionsArgs) -> color_eyre::Result<i32> {
    let spec = match config.require(&args.service) {
        Ok(spec) => spec,
        Err(error) => return Ok(super::unknown_service(error)),
    };
    let info = match versions::read(&spec.deploy_dir, spec.branch.as_deref(), args.limit) {
        Ok(info) => info,
        Err(error) => {
            eprintln!("error: {error}");
            return Ok(super::EXIT_FAILED);
        }
    };

    if args.json {
        let json = VersionsJson {
            service: &spec.name,
            branch: info.history_branch.as_deref(),
            history: &info.history,
        };
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(super::EXIT_OK);
    }

    println!(
        "{} on {}",
        spec.name,
        info.history_branch.as_deref().unwrap_or("(detached HEAD)")
    );
    for entry in &info.history {
        let marker = if entry.deployed { "*" } else { " " };
        let tags = entry.tags.join(",");
        println!(
            "{marker} {:<9} {:<10} {}  {}",
            entry.short,
            tags,
            format_time(entry.time),
            entry.subject
        );
    }
    if !info.history.iter().any(|entry| entry.deployed) {
        if info.history.len() >= args.limit {
            println!(
                "(deployed {} is older than the {} entries shown; raise --limit)",
                info.short, args.limit
            );
        } else {
            println!("(deployed {} is not on this branch)", info.short);
        }
    }
    Ok(super::EXIT_OK)
}

/// Formats Unix seconds as `YYYY-MM-DD HH:MMZ`, in UTC.
pub fn format_time(seconds: i64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds.max(0) as u64);
    let text = humantime::format_rfc3339_seconds(time).to_string();
    format!("{}Z", text[..16].replace('T', " "))
}
