//! Command-line entry: parses arguments, installs error reporting and runs
//! the chosen subcommand on a tokio runtime.

use std::process::ExitCode;

use clap::Parser;

use rewind::cli::{self, args::Cli};

fn main() -> ExitCode {
    if let Err(error) = color_eyre::install() {
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
            eprintln!("error: {report:?}");
            ExitCode::from(1)
        }
    }
}
