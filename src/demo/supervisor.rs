//! The demo supervisor's side of the services: choosing their ports,
//! starting one `demo-serve` process each, waiting until they listen, and
//! stopping every service process named by a pid file.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::Duration;

use color_eyre::eyre::{Result, WrapErr, bail, eyre};
use toml::{Table, Value};

use super::process::{self, SUPERVISOR_PID_FILE, ServeCommand};

/// Time the services get to exit after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Time between two connection attempts while waiting for the services.
const CONNECT_INTERVAL: Duration = Duration::from_millis(100);

/// One service to start: its name and its `demo-serve` command.
#[derive(Debug, Clone)]
pub struct Launch {
    pub name: String,
    pub command: ServeCommand,
}

/// Returns a distinct free port on 127.0.0.1 for each name.
///
/// NOTE: each port is free when it is chosen. Another program can still take
/// it before the service listens, and the service then exits with an error
/// in its log.
pub fn choose_ports<'a>(
    names: impl IntoIterator<Item = &'a String>,
) -> Result<BTreeMap<String, u16>> {
    let mut listeners = Vec::new();
    let mut ports = BTreeMap::new();

    // Keeping every listener open until all ports are chosen makes them
    // distinct.
    for name in names {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .wrap_err("failed to find a free port on 127.0.0.1")?;
        let port = listener.local_addr()?.port();
        listeners.push(listener);
        ports.insert(name.clone(), port);
    }
    Ok(ports)
}

/// Reads the services to start from the rendered configuration `text`: the
/// working folder is each service's `deploy_dir`, and the port, the pid
/// file and the data path come from its `demo-restart` command, so the
/// first start matches a restart.
pub fn launches(text: &str, executable: &Path, supervisor_pid: u32) -> Result<Vec<Launch>> {
    let table: Table = toml::from_str(text).wrap_err("invalid demo configuration")?;
    let services = table
        .get("services")
        .and_then(Value::as_table)
        .ok_or_else(|| eyre!("demo configuration has no `[services]` table"))?;

    let mut launches = Vec::new();
    for (name, service) in services {
        let deploy_dir = service
            .get("deploy_dir")
            .and_then(Value::as_str)
            .ok_or_else(|| eyre!("demo service `{name}` has no `deploy_dir`"))?;
        let arguments: Vec<&str> = service
            .get("restart")
            .and_then(|restart| restart.get("command"))
            .and_then(Value::as_array)
            .map(|command| command.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();

        let port = option_value(&arguments, "--port")
            .and_then(|port| port.parse::<u16>().ok())
            .ok_or_else(|| {
                eyre!("restart command of demo service `{name}` has no valid `--port`")
            })?;
        let pid_file = option_value(&arguments, "--pidfile")
            .ok_or_else(|| eyre!("restart command of demo service `{name}` has no `--pidfile`"))?;

        launches.push(Launch {
            name: name.clone(),
            command: ServeCommand {
                executable: executable.to_path_buf(),
                port,
                pid_file: PathBuf::from(pid_file),
                watch_pid: Some(supervisor_pid),
                working_dir: PathBuf::from(deploy_dir),
                data: option_value(&arguments, "--data").map(PathBuf::from),
            },
        });
    }
    Ok(launches)
}

fn option_value<'a>(arguments: &[&'a str], option: &str) -> Option<&'a str> {
    let position = arguments.iter().position(|argument| *argument == option)?;
    arguments.get(position + 1).copied()
}

/// The running demo services. Dropping the value stops every service process
/// named by a pid file in the run folder, also on a panic or an error.
#[derive(Debug)]
pub struct Services {
    run_dir: PathBuf,
    launches: Vec<Launch>,
    stopped: bool,
}

impl Services {
    /// Starts one `demo-serve` process per launch, records its pid in its pid
    /// file, and reaps it in the background when it exits.
    pub fn start(run_dir: &Path, launches: Vec<Launch>) -> Result<Services> {
        let mut services = Services {
            run_dir: run_dir.to_path_buf(),
            launches: Vec::new(),
            stopped: false,
        };

        for launch in launches {
            let command = launch.command.to_command()?;
            let mut child = tokio::process::Command::from(command)
                .spawn()
                .wrap_err_with(|| {
                    format!(
                        "failed to start demo service `{}` with `{}`",
                        launch.name,
                        launch.command.executable.display()
                    )
                })?;
            let pid = child
                .id()
                .ok_or_else(|| eyre!("demo service `{}` exited at once", launch.name))?;
            process::write_pid_file(&launch.command.pid_file, pid)?;
            tracing::info!(
                service = %launch.name,
                pid,
                port = launch.command.port,
                log = %launch.command.log_file().display(),
                "started demo service"
            );

            let name = launch.name.clone();
            tokio::spawn(async move {
                match child.wait().await {
                    Ok(status) => {
                        tracing::info!(service = %name, pid, %status, "demo service exited")
                    }
                    Err(error) => {
                        tracing::warn!(service = %name, pid, "failed to wait for demo service: {error}")
                    }
                }
            });
            services.launches.push(launch);
        }
        Ok(services)
    }

    /// Waits until every service accepts TCP connections on its port, or
    /// returns an error naming the first service that exited or did not
    /// listen before `timeout`, with its log file.
    pub async fn wait_until_listening(&self, timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;

        for launch in &self.launches {
            let command = &launch.command;
            loop {
                let connect = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, command.port));
                if let Ok(Ok(_)) = tokio::time::timeout(CONNECT_INTERVAL, connect).await {
                    break;
                }

                let pid = process::read_pid_file(&command.pid_file)?;
                if !pid.is_some_and(process::is_running) {
                    bail!(
                        "demo service `{}` exited before it listened on port {}; see its log `{}`",
                        launch.name,
                        command.port,
                        command.log_file().display()
                    );
                }
                if tokio::time::Instant::now() >= deadline {
                    bail!(
                        "demo service `{}` did not listen on port {} within {timeout:?}; see its log `{}`",
                        launch.name,
                        command.port,
                        command.log_file().display()
                    );
                }
                tokio::time::sleep(CONNECT_INTERVAL).await;
            }
        }
        Ok(())
    }

    /// Stops the services and removes the supervisor's pid file.
    pub fn stop(mut self) -> Result<()> {
        self.stopped = true;
        stop_all(&self.run_dir)?;
        process::remove_file_if_present(&self.run_dir.join(SUPERVISOR_PID_FILE))
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        if self.stopped {
            return;
        }
        if let Err(error) = stop_all(&self.run_dir) {
            tracing::error!(run_dir = %self.run_dir.display(), "failed to stop the demo services: {error:#}");
        }
        if let Err(error) = process::remove_file_if_present(&self.run_dir.join(SUPERVISOR_PID_FILE))
        {
            tracing::warn!("{error:#}");
        }
    }
}

/// Stops every `demo-serve` process named by a `*.pid` file in `run_dir`,
/// which includes the processes that restarts started, and removes their
/// pid files. Skips the supervisor's pid file and pids that no longer run a
/// demo service. A missing `run_dir` has nothing to stop.
pub fn stop_all(run_dir: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(run_dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => {
            return Err(error).wrap_err_with(|| format!("failed to list `{}`", run_dir.display()));
        }
    };

    let mut pid_files = Vec::new();
    let mut pids = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let is_pid_file = path.extension().is_some_and(|extension| extension == "pid");
        let is_supervisor = path
            .file_name()
            .is_some_and(|name| name == SUPERVISOR_PID_FILE);
        if !is_pid_file || is_supervisor {
            continue;
        }

        if let Some(pid) = process::read_pid_file(&path)?
            && process::is_running(pid)
            && process::has_argument(pid, "demo-serve")
        {
            pids.push(pid);
        }
        pid_files.push(path);
    }

    if !pids.is_empty() {
        tracing::info!(?pids, "stopping demo services");
        process::terminate_all(&pids, STOP_GRACE)?;
    }
    for path in pid_files {
        process::remove_file_if_present(&path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct() {
        let names: Vec<String> = ["a", "b", "c", "d"].map(str::to_owned).to_vec();

        let ports = choose_ports(&names).unwrap();

        let mut values: Vec<u16> = ports.values().copied().collect();
        values.sort();
        values.dedup();
        assert_eq!(values.len(), 4);
        assert!(values.iter().all(|port| *port != 0));
    }

    #[test]
    fn launches_follow_restart_command() {
        let text = r#"
            [services.orders]
            deploy_dir = "/srv/demo/repos/orders"
            [services.orders.restart]
            command = ["/bin/rewind", "demo-restart", "--port", "40002", "--pidfile", "/srv/demo/run/orders.pid", "--data", "/srv/demo/data/orders.db"]
        "#;

        let launches = launches(text, Path::new("/bin/rewind"), 77).unwrap();

        assert_eq!(launches.len(), 1);
        let command = &launches[0].command;
        assert_eq!(launches[0].name, "orders");
        assert_eq!(command.port, 40002);
        assert_eq!(command.pid_file, Path::new("/srv/demo/run/orders.pid"));
        assert_eq!(command.working_dir, Path::new("/srv/demo/repos/orders"));
        assert_eq!(command.watch_pid, Some(77));
        assert_eq!(
            command.data.as_deref(),
            Some(Path::new("/srv/demo/data/orders.db"))
        );
    }

    #[test]
    fn launches_reject_command_without_port() {
        let text = r#"
            [services.orders]
            deploy_dir = "/srv/demo/repos/orders"
            [services.orders.restart]
            command = ["/bin/true"]
        "#;

        let error = launches(text, Path::new("/bin/rewind"), 77)
            .unwrap_err()
            .to_string();

        assert!(error.contains("`orders`"), "{error}");
        assert!(error.contains("`--port`"), "{error}");
    }

    #[test]
    fn stop_all_removes_stale_pid_files() {
        let run_dir = tempfile::tempdir().unwrap();
        let stale = run_dir.path().join("orders.pid");
        let supervisor = run_dir.path().join(SUPERVISOR_PID_FILE);
        process::write_pid_file(&stale, i32::MAX as u32).unwrap();
        process::write_pid_file(&supervisor, std::process::id()).unwrap();

        stop_all(run_dir.path()).unwrap();

        assert!(!stale.exists());
        assert!(supervisor.exists());
    }

    #[test]
    fn stop_all_accepts_missing_dir() {
        let root = tempfile::tempdir().unwrap();

        stop_all(&root.path().join("run")).unwrap();
    }
}
