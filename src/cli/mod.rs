//! The command-line front end: one file per subcommand. Each subcommand
//! loads and checks the configuration first, then drives the same engines
//! the dashboard uses and prints their events as lines or JSON.

pub mod args;
mod backup;
mod backups;
mod catalog;
mod check;
mod execution;
mod history;
mod pin;
mod plan;
mod recover;
mod restore;
mod rollback;
mod status;
mod undo;
mod verify;
mod versions;

use std::path::Path;

use args::{Cli, Command};

use crate::config::{self, Config, ConfigError};

/// Exit code for success.
pub const EXIT_OK: i32 = 0;
/// Exit code for a run that failed (and returned to where it started).
pub const EXIT_FAILED: i32 = 1;
/// Exit code for invalid configuration or arguments.
pub const EXIT_USAGE: i32 = 2;
/// Exit code for a run refused before any change.
pub const EXIT_REFUSED: i32 = 3;

/// Runs the command line and returns the process exit code.
pub async fn run(cli: Cli) -> color_eyre::Result<i32> {
    let command = cli.command.unwrap_or(Command::Dashboard);
    match command {
        Command::DemoServe(args) => crate::demo::serve(args).await.map(|()| EXIT_OK),
        Command::DemoRestart(args) => crate::demo::restart(args).await.map(|()| EXIT_OK),
        Command::Demo(args) => crate::demo::run(args).await,
        command => {
            let config = match load(cli.config.as_deref()) {
                Ok(config) => config,
                Err(error) => {
                    eprintln!("{}", error.report());
                    return Ok(EXIT_USAGE);
                }
            };
            // Only commands that change services or run for long write a log,
            // so read-only commands leave the state folder as it was.
            if matches!(
                command,
                Command::Rollback(_)
                    | Command::Undo(_)
                    | Command::Recover(_)
                    | Command::Dashboard
                    | Command::Backup(_)
                    | Command::Restore(_)
                    | Command::Pin(_)
            ) {
                crate::logging::init(&config.state_dir);
            }
            if !matches!(command, Command::Dashboard | Command::Recover(_)) {
                warn_unfinished(&config);
            }
            let read_only = cli.read_only;
            match command {
                Command::Check => Ok(check::run(&config)),
                Command::Status(args) => status::run(&config, &args).await,
                Command::Versions(args) => versions::run(&config, &args),
                Command::Plan(args) => plan::run(&config, &args),
                Command::Rollback(args) => rollback::run(&config, &args, read_only).await,
                Command::Undo(args) => undo::run(&config, &args, read_only).await,
                Command::Recover(args) => recover::run(&config, &args, read_only).await,
                Command::History(args) => history::run(&config, &args),
                Command::Backup(args) => backup::run(&config, &args, read_only).await,
                Command::Backups(args) => backups::run(&config, &args),
                Command::Restore(args) => restore::run(&config, &args, read_only).await,
                Command::Verify(args) => verify::run(&config, &args).await,
                Command::Pin(args) => pin::run(&config, &args, read_only).await,
                Command::Dashboard => crate::dashboard::run(config, read_only)
                    .await
                    .map(|()| EXIT_OK),
                Command::Demo(_) | Command::DemoServe(_) | Command::DemoRestart(_) => {
                    unreachable!("handled above")
                }
            }
        }
    }
}

/// Finds, reads and checks the configuration.
pub fn load(explicit: Option<&Path>) -> Result<Config, ConfigError> {
    let path = config::locate(explicit)?;
    config::load(&path)
}

/// Prints a config error about an unknown service and returns exit code 2.
fn unknown_service(error: ConfigError) -> i32 {
    eprintln!("{}", error.report());
    EXIT_USAGE
}

/// Warns on stderr about every service with an unfinished run.
fn warn_unfinished(config: &Config) {
    for spec in &config.services {
        match crate::engine::rollback::journal::read(&config.state_dir, &spec.name) {
            Ok(Some(state)) => {
                eprintln!("warning: {}", state.summary());
                eprintln!(
                    "hint: run `rewind recover {} --resume` or `--abort`",
                    spec.name
                );
            }
            Ok(None) => {}
            Err(error) => eprintln!("warning: {error}"),
        }
    }
}
