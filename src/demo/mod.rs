//! The demo environment: git repositories with a release history, one real
//! HTTP service process per repository serving the checked-out release, and
//! a configuration written from the top-level `services.toml`.

use crate::cli::args::{DemoArgs, DemoRestartArgs, DemoServeArgs};

/// Builds the demo in `args.dir`, starts its services and opens the
/// dashboard (or waits for a signal with `--headless`). Returns the exit code.
pub async fn run(args: DemoArgs) -> color_eyre::Result<i32> {
    let _ = args;
    todo!()
}

/// Runs one demo service process until it is stopped.
pub async fn serve(args: DemoServeArgs) -> color_eyre::Result<()> {
    let _ = args;
    todo!()
}

/// Stops the service process named by the pid file and starts a new one.
pub async fn restart(args: DemoRestartArgs) -> color_eyre::Result<()> {
    let _ = args;
    todo!()
}
