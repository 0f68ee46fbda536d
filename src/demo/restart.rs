//! The demo's restart command, `rewind demo-restart`: it stops the service
//! process named by the pid file and starts a new one for the release
//! checked out in the working folder.

use std::path::PathBuf;
use std::time::Duration;

use color_eyre::eyre::{Result, WrapErr};

use super::process::{self, SUPERVISOR_PID_FILE, ServeCommand};
use super::service::Release;
use crate::cli::args::DemoRestartArgs;

/// Time the old process gets to exit after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Stops the running service, if any, and starts a new `demo-serve` process
/// in its own process group. Prints one line per step on stdout and returns
/// without waiting for the new process to listen.
pub fn restart(args: DemoRestartArgs) -> Result<()> {
    let working_dir = std::env::current_dir().wrap_err("failed to read the working folder")?;
    let pid_file = working_dir.join(&args.pidfile);

    // Reading the release first means that a restart from the wrong folder
    // fails before it stops the running service.
    let release = Release::read(&working_dir)?;

    stop_running_service(&pid_file)?;

    let supervisor_file = pid_file.parent().map_or_else(
        || PathBuf::from(SUPERVISOR_PID_FILE),
        |dir| dir.join(SUPERVISOR_PID_FILE),
    );
    let supervisor =
        process::read_pid_file(&supervisor_file)?.filter(|pid| process::is_running(*pid));
    if supervisor.is_none() {
        println!(
            "no running demo supervisor in `{}`; the new service runs until it is stopped",
            supervisor_file.display()
        );
    }

    let command = ServeCommand {
        executable: std::env::current_exe().wrap_err("failed to find the rewind executable")?,
        port: args.port,
        pid_file: pid_file.clone(),
        watch_pid: supervisor,
        data: args.data.as_ref().map(|data| working_dir.join(data)),
        working_dir,
    };
    let child = command
        .to_command()?
        .spawn()
        .wrap_err_with(|| format!("failed to start `{}`", command.executable.display()))?;
    let pid = child.id();

    // The service writes the same pid file when it starts. Writing it here as
    // well means that a second restart right after this one finds the
    // process.
    process::write_pid_file(&pid_file, pid)?;
    println!("started pid {pid} (release {})", release.version);
    Ok(())
}

/// Stops the process named by `pid_file`, if it is a running demo service.
fn stop_running_service(pid_file: &std::path::Path) -> Result<()> {
    let Some(pid) = process::read_pid_file(pid_file)? else {
        println!("no pid file `{}`; starting the service", pid_file.display());
        return Ok(());
    };

    if !process::is_running(pid) {
        println!(
            "pid {pid} from `{}` is not running; starting the service",
            pid_file.display()
        );
        return Ok(());
    }
    if !process::has_argument(pid, "demo-serve") {
        println!(
            "pid {pid} from `{}` is not a demo service, so the pid file is stale; starting the service",
            pid_file.display()
        );
        return Ok(());
    }

    process::terminate(pid, STOP_GRACE).wrap_err_with(|| {
        format!(
            "failed to stop pid {pid} from `{}`; stop it with `kill -9 {pid}` and retry",
            pid_file.display()
        )
    })?;
    println!("stopped pid {pid}");
    Ok(())
}
