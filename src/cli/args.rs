//! Command-line arguments as clap types. Nothing outside `cli/` uses them:
//! each subcommand converts its arguments into checked settings first.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// A terminal dashboard for rolling back services.
#[derive(Debug, Parser)]
#[command(name = "rewind", version, about)]
pub struct Cli {
    /// Configuration file [default: ./services.toml, else
    /// $XDG_CONFIG_HOME/rewind/services.toml]
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Inspect only: refuse every command and key that changes a service
    #[arg(long, global = true)]
    pub read_only: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Open the dashboard (the default when no subcommand is given)
    Dashboard,
    /// Validate the configuration and exit 0, or exit 2 naming the problem
    Check,
    /// Print the health and deployed version of every service
    Status(StatusArgs),
    /// Print the release history of one service, newest first
    Versions(VersionsArgs),
    /// Print what a rollback would do without changing anything
    Plan(PlanArgs),
    /// Roll a service back to an earlier version
    Rollback(RollbackArgs),
    /// Roll back the last successful rollback of a service
    Undo(UndoArgs),
    /// Resume or abort a run that stopped without finishing
    Recover(RecoverArgs),
    /// Print finished runs from the audit log, newest first
    History(HistoryArgs),
    /// Back up a service's data now, then remove backups beyond `keep`
    Backup(BackupArgs),
    /// List the backups of a service, newest first
    Backups(BackupsArgs),
    /// Replace a service's data with one of its backups
    Restore(RestoreArgs),
    /// Recompute the hash of every backup and list the damaged ones
    Verify(VerifyArgs),
    /// Pin a backup so that retention never removes it, or unpin it
    Pin(PinArgs),
    /// Build a demo environment and open the dashboard on it
    Demo(DemoArgs),
    /// Run one demo service process (used by the demo itself)
    #[command(hide = true)]
    DemoServe(DemoServeArgs),
    /// Stop and start one demo service process (the demo's restart command)
    #[command(hide = true)]
    DemoRestart(DemoRestartArgs),
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct VersionsArgs {
    /// Service name from the configuration
    pub service: String,
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
    /// Number of history entries to show
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Service name from the configuration
    pub service: String,
    /// Target version: commit id, tag, branch or HEAD~N (not with --strategy data)
    #[arg(long, value_name = "REV")]
    pub to: Option<String>,
    #[command(flatten)]
    pub data: DataArgs,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

/// Data options of a rollback: the strategy and the backup to restore.
#[derive(Debug, Args)]
pub struct DataArgs {
    /// Strategy: code, data or code+data [default: the service's `strategy`]
    #[arg(long, value_name = "STRATEGY", value_parser = ["code", "data", "code+data"])]
    pub strategy: Option<String>,
    /// Backup to restore [default: the newest taken while the target was deployed]
    #[arg(long, value_name = "ID")]
    pub backup: Option<String>,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// Service name from the configuration
    pub service: String,
    /// Target version: commit id, tag, branch or HEAD~N (not with --strategy data)
    #[arg(long, value_name = "REV")]
    pub to: Option<String>,
    #[command(flatten)]
    pub data: DataArgs,
    /// Run without asking for confirmation (required when stdin is not a terminal)
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Print events as JSON lines instead of text
    #[arg(long)]
    pub json: bool,
    /// Reason for the rollback, kept in the audit log
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
}

#[derive(Debug, Args)]
pub struct UndoArgs {
    /// Service name from the configuration
    pub service: String,
    /// Run without asking for confirmation (required when stdin is not a terminal)
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Print events as JSON lines instead of text
    #[arg(long)]
    pub json: bool,
    /// Reason for the undo, kept in the audit log
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
}

#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// Service name from the configuration
    pub service: String,
    /// Continue the run from its first unfinished step
    #[arg(long, conflicts_with = "abort", required_unless_present = "abort")]
    pub resume: bool,
    /// Return the service to the version it had before the run
    #[arg(long)]
    pub abort: bool,
    /// Run without asking for confirmation (required when stdin is not a terminal)
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Print events as JSON lines instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Show only the runs of this service
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
    /// Number of runs to show
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Service name from the configuration
    pub service: String,
    /// Print the new backup as JSON instead of progress lines
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BackupsArgs {
    /// Service name from the configuration
    pub service: String,
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Service name from the configuration
    pub service: String,
    /// Backup id, as `rewind backups SERVICE` lists it
    pub backup_id: String,
    /// Run without asking for confirmation (required when stdin is not a terminal)
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Reason for the restore, recorded in the audit log
    #[arg(long)]
    pub reason: Option<String>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Service name from the configuration [default: every service with a
    /// backup table]
    pub service: Option<String>,
}

#[derive(Debug, Args)]
pub struct PinArgs {
    /// Service name from the configuration
    pub service: String,
    /// Backup id, as `rewind backups SERVICE` lists it
    pub backup_id: String,
    /// Remove the pin instead, so retention may remove the backup again
    #[arg(long)]
    pub unpin: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Folder to build the demo in; it is rebuilt when it contains an earlier demo
    #[arg(long, default_value = "demo", value_name = "DIR")]
    pub dir: PathBuf,
    /// Run the services without the dashboard; print `ready CONFIG_PATH`
    /// when all listen and stop them on SIGINT or SIGTERM
    #[arg(long)]
    pub headless: bool,
}

#[derive(Debug, Args)]
pub struct DemoServeArgs {
    /// Port to listen on, on 127.0.0.1
    #[arg(long)]
    pub port: u16,
    /// File to write this process's id to
    #[arg(long)]
    pub pidfile: PathBuf,
    /// Exit when the process with this id is gone (the demo supervisor)
    #[arg(long)]
    pub watch_pid: Option<u32>,
    /// The service's data: an SQLite file or a folder, as its release
    /// declares
    #[arg(long)]
    pub data: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DemoRestartArgs {
    /// Port the service listens on
    #[arg(long)]
    pub port: u16,
    /// Pid file of the running service process
    #[arg(long)]
    pub pidfile: PathBuf,
    /// The service's data, passed on to the new service process
    #[arg(long)]
    pub data: Option<PathBuf>,
}
