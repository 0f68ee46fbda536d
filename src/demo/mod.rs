//! The demo environment: git repositories with a release history, one real
//! HTTP service process per repository serving the checked-out release,
//! and a configuration written from the top-level `services.toml`. Three
//! services keep data, in SQLite databases or a folder, with one backup
//! per release.
//!
//! This file runs the steps of `rewind demo`. The demo supervisor is the
//! `rewind demo` process: it starts the services, records its own pid in
//! `run/supervisor.pid`, and stops the services when it exits. Each service
//! also exits by itself when the supervisor is gone.

mod data;
mod folder;
mod history;
mod process;
mod repos;
mod restart;
mod seed;
mod service;
mod supervisor;
mod template;

use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use color_eyre::eyre::{Result, WrapErr};
use tokio::signal::unix::{SignalKind, signal};

use crate::cli::args::{DemoArgs, DemoRestartArgs, DemoServeArgs};
use folder::{REPOS_DIR, RUN_DIR};
use supervisor::Services;
use template::{TEMPLATE, Target, Template};

/// Name of the configuration that the demo writes into its folder.
const CONFIG_FILE: &str = "services.toml";

/// Subfolder for rewind's own logs and locks, the `state_dir` of the demo.
const STATE_DIR: &str = "state";

/// Time the services get to listen after they start.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Builds the demo in `args.dir`, starts its services and opens the
/// dashboard (or waits for a signal with `--headless`). Returns the exit code.
pub async fn run(args: DemoArgs) -> color_eyre::Result<i32> {
    let dir = folder::prepare(&args.dir)?;
    let state_dir = dir.join(STATE_DIR);
    std::fs::create_dir_all(&state_dir)
        .wrap_err_with(|| format!("failed to create `{}`", state_dir.display()))?;
    crate::logging::init(&state_dir);

    let run_dir = dir.join(RUN_DIR);
    std::fs::create_dir_all(&run_dir)
        .wrap_err_with(|| format!("failed to create `{}`", run_dir.display()))?;

    repos::build_all(&dir.join(REPOS_DIR), day_start())?;

    let executable = std::env::current_exe().wrap_err("failed to find the rewind executable")?;
    let config_path = write_config(&dir, &executable)?;
    tracing::info!(config = %config_path.display(), "wrote the demo configuration");
    let config = crate::config::load(&config_path)?;
    let backups = seed::build_all(&config).await?;
    tracing::info!(backups, "built the demo data");

    let supervisor_pid = std::process::id();
    process::write_pid_file(&run_dir.join(process::SUPERVISOR_PID_FILE), supervisor_pid)?;
    let config_text = std::fs::read_to_string(&config_path)
        .wrap_err_with(|| format!("failed to read `{}`", config_path.display()))?;
    let launches = supervisor::launches(&config_text, &executable, supervisor_pid)?;

    if args.headless {
        run_headless(&run_dir, launches, &config_path).await
    } else {
        run_dashboard(&run_dir, launches, &config_path).await
    }
}

/// Runs one demo service process until it is stopped.
pub async fn serve(args: DemoServeArgs) -> color_eyre::Result<()> {
    service::serve(args).await
}

/// Stops the service process named by the pid file and starts a new one.
pub async fn restart(args: DemoRestartArgs) -> color_eyre::Result<()> {
    restart::restart(args)
}

/// Writes the demo's `services.toml` into `dir` from the template, with a
/// free port for each service. Returns its path.
fn write_config(dir: &Path, executable: &Path) -> Result<std::path::PathBuf> {
    let template = Template::parse(TEMPLATE)?;
    let ports = supervisor::choose_ports(template.ports().keys())?;
    let target = Target {
        dir,
        executable,
        ports: &ports,
    };
    let text = template.render(&target)?;

    let path = dir.join(CONFIG_FILE);
    std::fs::write(&path, text)
        .wrap_err_with(|| format!("failed to write `{}`", path.display()))?;
    Ok(path)
}

/// Starts the services, prints `ready CONFIG_PATH` once they listen, and
/// stops them on SIGINT or SIGTERM.
async fn run_headless(
    run_dir: &Path,
    launches: Vec<supervisor::Launch>,
    config_path: &Path,
) -> Result<i32> {
    // The handlers are installed before the services start, so that a
    // signal during startup still stops them.
    let mut terminate =
        signal(SignalKind::terminate()).wrap_err("failed to install the SIGTERM handler")?;
    let mut interrupt =
        signal(SignalKind::interrupt()).wrap_err("failed to install the SIGINT handler")?;
    let stop = async move {
        tokio::select! {
            _ = terminate.recv() => tracing::info!("received SIGTERM"),
            _ = interrupt.recv() => tracing::info!("received SIGINT"),
        }
    };
    let mut stop = std::pin::pin!(stop);

    let services = Services::start(run_dir, launches)?;
    tokio::select! {
        () = &mut stop => {
            services.stop()?;
            return Ok(0);
        }
        ready = services.wait_until_listening(READY_TIMEOUT) => ready?,
    }

    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "ready {}", config_path.display()).wrap_err("failed to write to stdout")?;
    stdout.flush().wrap_err("failed to flush stdout")?;
    drop(stdout);

    stop.await;
    services.stop()?;
    Ok(0)
}

/// Starts the services, waits until they listen, and runs the dashboard on
/// the demo's configuration. Stops the services when the dashboard returns,
/// fails or panics.
async fn run_dashboard(
    run_dir: &Path,
    launches: Vec<supervisor::Launch>,
    config_path: &Path,
) -> Result<i32> {
    let services = Services::start(run_dir, launches)?;
    services.wait_until_listening(READY_TIMEOUT).await?;

    let config = crate::config::load(config_path)?;
    let result = crate::dashboard::run(config, false).await;
    services.stop()?;
    result?;

    println!(
        "stopped the demo services; `{}` stays until the next `rewind demo`",
        config_path.display()
    );
    Ok(0)
}

/// Returns the start of the current UTC day in Unix seconds: the time that
/// release ages count back from. Commit ids stay the same within one day.
fn day_start() -> i64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    let now = i64::try_from(now).unwrap_or(i64::MAX);
    now - now % 86_400
}
