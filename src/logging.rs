//! Logging to `rewind.log` under the state folder through tracing, never to
//! the terminal: the terminal belongs to the dashboard and to command output.
//! The filter comes from `REWIND_LOG`, else `RUST_LOG`, else `info`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

/// Name of the log file inside the state folder.
pub const FILE_NAME: &str = "rewind.log";

/// Lines the writer thread's channel holds. The channel allocates every slot
/// up front, 32 bytes each, so tracing-appender 0.2's default of 128,000
/// lines costs 4 MiB; 4,096 lines cost 128 KiB. When the writer thread falls
/// this far behind, new lines are dropped instead of blocking the caller.
const BUFFERED_LINES: usize = 4_096;

/// The writer's guard, kept for the life of the process so buffered lines
/// are flushed, and the path of the log file.
static LOG: OnceLock<(WorkerGuard, PathBuf)> = OnceLock::new();

/// Starts logging into `state_dir/rewind.log`. Later calls do nothing, and
/// a folder that cannot be created leaves logging off rather than failing
/// the command.
pub fn init(state_dir: &Path) {
    if LOG.get().is_some() {
        return;
    }
    if std::fs::create_dir_all(state_dir).is_err() {
        return;
    }
    let filter = std::env::var("REWIND_LOG")
        .ok()
        .and_then(|value| EnvFilter::try_new(value).ok())
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    // A folder that cannot be written (a read-only file system) leaves
    // logging off; the command itself reports the folder when it needs it.
    let Ok(appender) = tracing_appender::rolling::RollingFileAppender::builder()
        .filename_prefix(FILE_NAME)
        .build(state_dir)
    else {
        return;
    };
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(BUFFERED_LINES)
        .lossy(true)
        .finish(appender);
    let installed = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .try_init();
    if installed.is_ok() {
        let _ = LOG.set((guard, state_dir.join(FILE_NAME)));
    }
}

/// Returns the path of the log file, once logging has started.
pub fn path() -> Option<&'static Path> {
    LOG.get().map(|(_, path)| path.as_path())
}
