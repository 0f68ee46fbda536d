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
