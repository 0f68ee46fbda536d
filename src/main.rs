//! Command-line entry: parses arguments, installs error reporting and runs
//! the chosen subcommand on a tokio runtime.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

use rewind::cli::{self, args::Cli};

fn main() -> ExitCode {
    // Colours only on a terminal, and no source locations: errors reach
    // users, who need the message and its causes.
    let theme = if std::io::stderr().is_terminal() {
        color_eyre::config::Theme::dark()
    } else {
        color_eyre::config::Theme::new()
    };
    let hooks = color_eyre::config::HookBuilder::default()
        .theme(theme)
        .display_location_section(false)
        .display_env_section(false)
        .install();
    if let Err(error) = hooks {
        eprintln!("error: cannot install error reporting: {error}");
    }
    let cli = Cli::parse();
    let _failpoints = rewind::engine::failpoint::setup();
    limit_malloc_arenas();

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(cli::run(cli));
    // Background tasks such as health probes must not delay the exit.
    runtime.shutdown_background();

    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(report) => {
            eprintln!("error: {report}");
            for cause in report.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(1)
        }
    }
}

/// Maximum number of glibc malloc arenas. One arena gave the same resident
/// memory in benches/memory.rs, and two let two threads allocate at once.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MALLOC_ARENAS: libc::c_int = 2;

/// Caps glibc's malloc arenas at [`MALLOC_ARENAS`] unless `MALLOC_ARENA_MAX`
/// is set. Must run before the runtime starts its threads.
///
/// Without a cap glibc creates arenas as threads allocate, up to a multiple
/// of the number of CPUs (mallopt(3)), and memory freed into an arena stays
/// with that arena. Rollbacks, backups and the CLI run their file and git
/// work on tokio's blocking threads, which come and go, so each arena
/// would grow to the peak of the work that ran in it.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt takes two integers and changes allocator
        // parameters only, and no other thread runs yet.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, MALLOC_ARENAS);
        }
    }
}
