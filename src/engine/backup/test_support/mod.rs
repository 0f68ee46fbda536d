//! Throwaway database servers for the backup tests, started from the
//! installed server programs in temporary folders on free loopback ports.
//!
//! A server does not outlive the test binary. Each is spawned from one
//! long-lived thread with `PR_SET_PDEATHSIG` set to `SIGKILL`, so the
//! kernel kills it when the test process ends, even by `SIGKILL`. An
//! `atexit` handler stops the shared servers cleanly and removes their
//! folders when the binary exits normally. Each start also removes the
//! folders of earlier runs whose test process is gone, and kills a server
//! still listed in them.

pub(crate) mod mariadb;
pub(crate) mod postgres;

use std::fs;
use std::io;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, WaitOptions};

pub(crate) use mariadb::MariaDb;
pub(crate) use postgres::Postgres;

/// Prefix of the temporary folders of test servers.
const FOLDER_PREFIX: &str = "rewind-test-";

/// File in a server folder naming the pid of the test process.
const OWNER_FILE: &str = "owner.pid";

/// File in a server folder naming the pid of the server.
const SERVER_FILE: &str = "server.pid";

/// How long a server may take to stop after its stop signal.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// A running server process and its folder.
#[derive(Debug)]
pub(crate) struct ServerProcess {
    pub(crate) pid: u32,
    pub(crate) dir: PathBuf,
    stop_signal: Signal,
}

/// Servers to stop when the test binary exits.
static RUNNING: Mutex<Vec<(u32, PathBuf, i32)>> = Mutex::new(Vec::new());

impl ServerProcess {
    /// Sends the stop signal, waits for the process, and removes its
    /// folder.
    pub(crate) fn stop(&self) {
        stop(self.pid, self.stop_signal);
        let _ = fs::remove_dir_all(&self.dir);
        RUNNING
            .lock()
            .unwrap()
            .retain(|(pid, _, _)| *pid != self.pid);
    }
}

/// Creates a server folder, owned by `owner` when given, after removing
/// the folders that earlier test runs left.
pub(crate) fn server_folder(kind: &str, owner: Option<(u32, u32)>) -> PathBuf {
    sweep_stale_folders();
    let dir = tempfile::Builder::new()
        .prefix(&format!("{FOLDER_PREFIX}{kind}-"))
        .tempdir()
        .expect("create a server folder")
        .keep();
    fs::write(dir.join(OWNER_FILE), std::process::id().to_string()).unwrap();
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
    }
    dir
}

/// Starts `command` as a server whose folder is `dir`. `stop_signal` makes
/// it shut down cleanly.
pub(crate) fn spawn_server(
    mut command: Command,
    dir: &Path,
    stop_signal: Signal,
) -> io::Result<ServerProcess> {
    // SAFETY: the closure only makes one system call, which is
    // async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(Signal::KILL))
                .map_err(io::Error::from)
        });
    }
    command.process_group(0);
    let child = spawn_from_keeper(command)?;
    let pid = child.id();
    fs::write(dir.join(SERVER_FILE), pid.to_string())?;
    register_exit_handler();
    RUNNING
        .lock()
        .unwrap()
        .push((pid, dir.to_path_buf(), stop_signal.as_raw()));
    // The keeper thread's `Child` is dropped here; the pid is reaped by
    // `stop`, and `Child` never kills on drop.
    drop(child);
    Ok(ServerProcess {
        pid,
        dir: dir.to_path_buf(),
        stop_signal,
    })
}

/// Spawns `command` from a thread that lives as long as the process.
/// `PR_SET_PDEATHSIG` fires when the spawning thread ends, so spawning
/// from a test's own thread would kill the server when that test ends.
fn spawn_from_keeper(command: Command) -> io::Result<Child> {
    type Request = (Command, mpsc::Sender<io::Result<Child>>);
    static KEEPER: OnceLock<Mutex<mpsc::Sender<Request>>> = OnceLock::new();
    let keeper = KEEPER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("test-server-keeper".into())
            .spawn(move || {
                for (mut command, reply) in rx {
                    let _ = reply.send(command.spawn());
                }
            })
            .expect("start the server keeper thread");
        Mutex::new(tx)
    });
    let (reply_tx, reply_rx) = mpsc::channel();
    keeper
        .lock()
        .unwrap()
        .send((command, reply_tx))
        .expect("keeper thread runs");
    reply_rx.recv().expect("keeper thread replies")
}

fn register_exit_handler() {
    static REGISTERED: OnceLock<()> = OnceLock::new();
    REGISTERED.get_or_init(|| {
        // SAFETY: `stop_all_servers` is a plain function that stays valid
        // for the life of the process.
        unsafe {
            libc::atexit(stop_all_servers);
        }
    });
}

extern "C" fn stop_all_servers() {
    let servers = std::mem::take(&mut *RUNNING.lock().unwrap_or_else(|e| e.into_inner()));
    for (pid, dir, signal) in servers {
        stop(pid, Signal::from_named_raw(signal).unwrap_or(Signal::TERM));
        let _ = fs::remove_dir_all(dir);
    }
}

/// Sends `signal` to `pid` and reaps it, killing it after [`STOP_GRACE`].
fn stop(pid: u32, signal: Signal) {
    let Some(pid) = Pid::from_raw(pid as i32) else {
        return;
    };
    let _ = rustix::process::kill_process(pid, signal);
    let deadline = Instant::now() + STOP_GRACE;
    while Instant::now() < deadline {
        match rustix::process::waitpid(Some(pid), WaitOptions::NOHANG) {
            Ok(Some(_)) | Err(_) => return,
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    let _ = rustix::process::kill_process(pid, Signal::KILL);
    let _ = rustix::process::waitpid(Some(pid), WaitOptions::empty());
}

/// Removes server folders whose test process is gone, killing any server
/// still running from them.
fn sweep_stale_folders() {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let dir = entry.path();
        let is_server_folder = entry
            .file_name()
            .to_str()
            .is_some_and(|name| name.starts_with(FOLDER_PREFIX));
        if !is_server_folder || pid_in(&dir.join(OWNER_FILE)).is_some_and(is_alive) {
            continue;
        }
        if let Some(server) = pid_in(&dir.join(SERVER_FILE)).filter(|pid| is_alive(*pid)) {
            let _ = rustix::process::kill_process(server, Signal::KILL);
        }
        let _ = fs::remove_dir_all(&dir);
    }
}

fn pid_in(path: &Path) -> Option<Pid> {
    let text = fs::read_to_string(path).ok()?;
    Pid::from_raw(text.trim().parse().ok()?)
}

fn is_alive(pid: Pid) -> bool {
    rustix::process::test_kill_process(pid).is_ok()
}

/// Returns a TCP port on 127.0.0.1 that was free a moment ago.
pub(crate) fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().unwrap().port()
}

/// Returns the uid and gid of the first of `names` in `/etc/passwd`.
pub(crate) fn system_user(names: &[&str]) -> Option<(u32, u32)> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    names.iter().find_map(|name| {
        passwd.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.first() == Some(name) && fields.len() > 3)
                .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
                .flatten()
        })
    })
}

/// Returns the first of `names` found in `dirs` or on PATH.
pub(crate) fn find_program(names: &[&str], dirs: &[PathBuf]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut all: Vec<PathBuf> = dirs.to_vec();
    all.extend(std::env::split_paths(&path));
    names.iter().find_map(|name| {
        all.iter()
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

/// Waits until `ready` returns true, for at most `limit`.
pub(crate) fn wait_until(limit: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if ready() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// Returns a database name unique within this test run.
pub(crate) fn unique_name(prefix: &str) -> String {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let count = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{prefix}_{}_{count}", std::process::id())
}
