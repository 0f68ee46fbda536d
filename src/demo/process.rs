//! Process plumbing of the demo: pid files, liveness checks, stopping a
//! process with SIGTERM then SIGKILL, and the `demo-serve` command line.

use std::fs::OpenOptions;
use std::io::ErrorKind;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use color_eyre::eyre::{Result, WrapErr, eyre};
use rustix::io::Errno;
use rustix::process::{Pid, Signal};

/// Name of the file, next to the services' pid files, that contains the pid
/// of the demo supervisor (the `rewind demo` process).
pub const SUPERVISOR_PID_FILE: &str = "supervisor.pid";

/// Time a process gets to exit after SIGKILL before `terminate` gives up.
const KILL_WAIT: Duration = Duration::from_secs(1);

/// Time between two liveness checks while waiting for an exit.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Writes `pid` to `path` through a temporary file and a rename, so that
/// readers never see a partly written file.
pub fn write_pid_file(path: &Path, pid: u32) -> Result<()> {
    let file_name = path.file_name().ok_or_else(|| {
        eyre!(
            "invalid pid file path `{}`: it has no file name",
            path.display()
        )
    })?;
    let mut temporary_name = file_name.to_os_string();
    temporary_name.push(format!(".{}.tmp", std::process::id()));
    let temporary_path = path.with_file_name(temporary_name);

    std::fs::write(&temporary_path, format!("{pid}\n"))
        .wrap_err_with(|| format!("failed to write `{}`", temporary_path.display()))?;
    std::fs::rename(&temporary_path, path).wrap_err_with(|| {
        format!(
            "failed to rename `{}` to `{}`",
            temporary_path.display(),
            path.display()
        )
    })
}

/// Reads the pid in `path`. Returns `None` when the file does not exist.
pub fn read_pid_file(path: &Path) -> Result<Option<u32>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(error)
                .wrap_err_with(|| format!("failed to read pid file `{}`", path.display()));
        }
    };

    let pid = text
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|pid| to_rustix_pid(*pid).is_some())
        .ok_or_else(|| {
            eyre!(
                "invalid pid file `{}`: expected a process id, found `{}`; delete the file and retry",
                path.display(),
                text.trim()
            )
        })?;
    Ok(Some(pid))
}

/// Removes the pid file at `path` if it still contains `pid`, because a newer
/// process may have replaced it.
pub fn remove_pid_file_if_owned(path: &Path, pid: u32) -> Result<()> {
    if read_pid_file(path)? == Some(pid) {
        remove_file_if_present(path)?;
    }
    Ok(())
}

/// Removes the file at `path`, and succeeds when it does not exist.
pub fn remove_file_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error).wrap_err_with(|| format!("failed to remove `{}`", path.display())),
    }
}

/// Tells whether process `pid` exists and has not exited. An exited process
/// that its parent has not reaped yet (a zombie) counts as exited.
pub fn is_running(pid: u32) -> bool {
    let Some(target) = to_rustix_pid(pid) else {
        return false;
    };

    // EPERM means that the process exists but belongs to another user.
    match rustix::process::test_kill_process(target) {
        Ok(()) | Err(Errno::PERM) => !is_zombie(pid),
        Err(_) => false,
    }
}

/// Tells whether process `pid` runs with `argument` among its command-line
/// arguments. Returns true when `/proc` cannot be read, because the pid file
/// is then the only evidence.
pub fn has_argument(pid: u32, argument: &str) -> bool {
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(command_line) => command_line
            .split(|byte| *byte == 0)
            .any(|word| word == argument.as_bytes()),
        Err(_) => true,
    }
}

/// Sends SIGTERM to `pid`, waits up to `grace` for it to exit, then sends
/// SIGKILL. Returns an error naming the pid if the process still runs after
/// SIGKILL.
pub fn terminate(pid: u32, grace: Duration) -> Result<()> {
    terminate_all(&[pid], grace)
}

/// Sends SIGTERM to every pid at once, waits up to `grace` for all of them
/// to exit, then sends SIGKILL to the rest.
pub fn terminate_all(pids: &[u32], grace: Duration) -> Result<()> {
    for &pid in pids {
        send_signal(pid, Signal::TERM);
    }
    let remaining = wait_for_exit(pids, grace);
    if remaining.is_empty() {
        return Ok(());
    }

    tracing::warn!(
        ?remaining,
        ?grace,
        "processes ignored SIGTERM; sending SIGKILL"
    );
    for &pid in &remaining {
        send_signal(pid, Signal::KILL);
    }
    let remaining = wait_for_exit(&remaining, KILL_WAIT);
    if remaining.is_empty() {
        return Ok(());
    }
    Err(eyre!(
        "processes {remaining:?} still run after SIGKILL; check them with `ps -p PID`"
    ))
}

/// Settings of one `rewind demo-serve` process.
#[derive(Debug, Clone)]
pub struct ServeCommand {
    /// The `rewind` executable.
    pub executable: PathBuf,
    pub port: u16,
    pub pid_file: PathBuf,
    /// Process whose exit stops the service: the demo supervisor.
    pub watch_pid: Option<u32>,
    /// The service's deploy_dir, whose `release.toml` it serves.
    pub working_dir: PathBuf,
    /// The service's data file or folder, passed as `--data`.
    pub data: Option<PathBuf>,
}

impl ServeCommand {
    /// Returns the service's log file, next to its pid file: `NAME.log` for
    /// `NAME.pid`.
    pub fn log_file(&self) -> PathBuf {
        if self
            .pid_file
            .extension()
            .is_some_and(|extension| extension == "pid")
        {
            return self.pid_file.with_extension("log");
        }
        let mut name = self.pid_file.clone().into_os_string();
        name.push(".log");
        PathBuf::from(name)
    }

    /// Builds the command line. The process gets its own process group, so
    /// that a signal to the caller's group does not reach it. Its standard
    /// input is /dev/null, and its standard output and error are appended to
    /// the log file, because a caller that reads the spawner's pipes until
    /// they close would otherwise wait for the service to exit.
    pub fn to_command(&self) -> Result<Command> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_file())
            .wrap_err_with(|| format!("failed to open log file `{}`", self.log_file().display()))?;
        let log_copy = log
            .try_clone()
            .wrap_err("failed to duplicate the log file handle")?;

        let mut command = Command::new(&self.executable);
        command
            .arg("demo-serve")
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--pidfile")
            .arg(&self.pid_file);
        if let Some(pid) = self.watch_pid {
            command.arg("--watch-pid").arg(pid.to_string());
        }
        if let Some(data) = &self.data {
            command.arg("--data").arg(data);
        }
        command
            .current_dir(&self.working_dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_copy)
            .process_group(0);
        Ok(command)
    }
}

/// Sends `signal` to `pid`. A process that is already gone is not an error.
fn send_signal(pid: u32, signal: Signal) {
    let Some(target) = to_rustix_pid(pid) else {
        return;
    };
    match rustix::process::kill_process(target, signal) {
        Ok(()) | Err(Errno::SRCH) => {}
        Err(error) => tracing::warn!(pid, ?signal, "failed to send signal: {error}"),
    }
}

/// Waits up to `timeout` for the processes to exit. Returns those that still
/// run.
fn wait_for_exit(pids: &[u32], timeout: Duration) -> Vec<u32> {
    let deadline = Instant::now() + timeout;
    loop {
        let remaining: Vec<u32> = pids
            .iter()
            .copied()
            .filter(|pid| is_running(*pid))
            .collect();
        if remaining.is_empty() || Instant::now() >= deadline {
            return remaining;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Tells whether `/proc` shows process `pid` as a zombie. Returns false when
/// `/proc` cannot be read.
fn is_zombie(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };

    // The state letter follows the command name, which is in parentheses and
    // may itself contain spaces or parentheses.
    stat.rsplit_once(')')
        .is_some_and(|(_, fields)| fields.trim_start().starts_with('Z'))
}

/// Converts `pid` to rustix's type. Returns `None` for 0 and for values
/// above `i32::MAX`, which name no single process.
fn to_rustix_pid(pid: u32) -> Option<Pid> {
    Pid::from_raw(i32::try_from(pid).ok()?)
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;

    use super::*;

    #[test]
    fn pid_file_round_trip() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("orders.pid");

        write_pid_file(&path, 4242).unwrap();

        assert_eq!(read_pid_file(&path).unwrap(), Some(4242));
        assert_eq!(std::fs::read_dir(folder.path()).unwrap().count(), 1);
    }

    #[test]
    fn missing_pid_file_reads_none() {
        let folder = tempfile::tempdir().unwrap();

        let pid = read_pid_file(&folder.path().join("orders.pid")).unwrap();

        assert_eq!(pid, None);
    }

    #[test]
    fn invalid_pid_file_names_file() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("orders.pid");
        std::fs::write(&path, "not a pid\n").unwrap();

        let error = read_pid_file(&path).unwrap_err().to_string();

        assert!(error.contains(&format!("`{}`", path.display())), "{error}");
        assert!(error.contains("delete the file"), "{error}");
    }

    #[test]
    fn pid_file_kept_when_replaced() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("orders.pid");
        write_pid_file(&path, 200).unwrap();

        remove_pid_file_if_owned(&path, 100).unwrap();
        assert!(path.exists());

        remove_pid_file_if_owned(&path, 200).unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn terminate_stops_child() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        assert!(is_running(pid));

        terminate(pid, Duration::from_secs(5)).unwrap();

        assert!(!is_running(pid));
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(Signal::TERM.as_raw()));
    }

    #[test]
    fn has_argument_reads_command_line() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        // Until the child has exec'd, its command line is the parent's.
        for _ in 0..200 {
            if has_argument(pid, "30") {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }

        let has_duration = has_argument(pid, "30");
        let has_subcommand = has_argument(pid, "demo-serve");
        child.kill().unwrap();
        child.wait().unwrap();

        assert!(has_duration);
        assert!(!has_subcommand);
    }

    #[test]
    fn log_file_replaces_pid_extension() {
        let command = ServeCommand {
            executable: PathBuf::from("/bin/rewind"),
            port: 1,
            pid_file: PathBuf::from("/tmp/run/orders.pid"),
            watch_pid: None,
            working_dir: PathBuf::from("/tmp"),
            data: None,
        };

        assert_eq!(command.log_file(), PathBuf::from("/tmp/run/orders.log"));
    }
}
