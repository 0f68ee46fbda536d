//! A throwaway PostgreSQL server for the benchmark: `initdb` into a
//! temporary folder, then `postgres` on a free port of 127.0.0.1 with
//! `trust` authentication. As root the server runs as the `postgres` user,
//! because PostgreSQL refuses to run as root. Dropping the value stops the
//! server with a fast shutdown and removes its folder.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::run;

/// The superuser that `initdb` creates and the clients connect as.
pub const USER: &str = "rewind";

/// How long the server may take to accept connections or to stop.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running PostgreSQL server.
pub struct Postgres {
    pub port: u16,
    bin: PathBuf,
    child: Child,
    folder: tempfile::TempDir,
}

impl Postgres {
    /// Initializes a cluster under `parent` and starts a server on it.
    pub fn start(parent: &Path) -> Postgres {
        let bin = server_bin();
        let folder = tempfile::Builder::new()
            .prefix("pg-")
            .tempdir_in(parent)
            .expect("create the server folder");
        let owner = postgres_owner();
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(folder.path(), Some(uid), Some(gid))
                .expect("give the server folder to the postgres user");
        }
        let data = folder.path().join("data");
        let mut initdb = as_owner(Command::new(bin.join("initdb")), owner);
        initdb
            .arg(format!("--pgdata={}", data.display()))
            .arg(format!("--username={USER}"))
            .args(["--auth=trust", "--encoding=UTF8", "--no-sync"]);
        run(&mut initdb);

        let port = free_port();
        let mut server = as_owner(Command::new(bin.join("postgres")), owner);
        server
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!(
                "unix_socket_directories={}",
                folder.path().display()
            ))
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(folder.path().join("server.log"))
                    .map(Stdio::from)
                    .unwrap_or_else(|_| Stdio::null()),
            );
        let child = server.spawn().expect("start postgres");
        let postgres = Postgres {
            port,
            bin,
            child,
            folder,
        };
        postgres.wait_ready();
        postgres
    }

    /// Returns the process id of the postmaster.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Returns the connection URL of database `name`.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{name}", self.port)
    }

    /// Returns a command for client program `name` of this server's
    /// installation.
    pub fn client(&self, name: &str) -> Command {
        Command::new(self.bin.join(name))
    }

    /// Runs one SQL statement in database `name` and returns its output.
    pub fn query(&self, name: &str, sql: &str) -> String {
        let output = self
            .client("psql")
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .arg(self.url(name))
            .output()
            .expect("run psql");
        assert!(
            output.status.success(),
            "psql `{sql}` failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let ready = self
                .client("pg_isready")
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                .status()
                .is_ok_and(|status| status.success());
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "postgres did not accept connections within {START_TIMEOUT:?}, see {}",
                self.folder.path().join("server.log").display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGINT is PostgreSQL's fast shutdown: it rolls back open
        // transactions and waits for the backends to exit.
        // SAFETY: `kill` takes plain integers and the pid is our child's.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGINT);
        }
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("warning: postgres did not stop within {START_TIMEOUT:?}, killing it");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Returns the folder of the PostgreSQL server programs: the newest
/// `/usr/lib/postgresql/VERSION/bin`, where Debian installs them.
fn server_bin() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is not installed: /usr/lib/postgresql is missing")
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, bin)| bin.join("postgres").is_file())
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .expect("no /usr/lib/postgresql/VERSION/bin/postgres")
}

/// Returns the uid and gid of the `postgres` user when running as root.
fn postgres_owner() -> Option<(u32, u32)> {
    // SAFETY: `geteuid` has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let id = |flag: &str| -> u32 {
        let output = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .expect("run id");
        assert!(
            output.status.success(),
            "no `postgres` user to run the server as"
        );
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .expect("id prints a number")
    };
    Some((id("-u"), id("-g")))
}

fn as_owner(mut command: Command, owner: Option<(u32, u32)>) -> Command {
    if let Some((uid, gid)) = owner {
        command.uid(uid).gid(gid).env("HOME", "/tmp");
    }
    command
}

/// Returns a port of 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("find a free port")
}
