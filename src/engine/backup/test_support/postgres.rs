//! A throwaway PostgreSQL server: `initdb` into a temporary folder, then
//! `postgres` on a free port of 127.0.0.1 with password authentication.
//! As root the server runs as the `postgres` user (or `nobody`), because
//! PostgreSQL refuses to run as root.

use std::fs;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use rustix::process::Signal;

use super::{
    ServerProcess, find_program, free_port, server_folder, spawn_server, system_user, unique_name,
    wait_until,
};
use crate::engine::backup::tools::postgres_bin_dirs;

/// The superuser the tests connect as.
pub(crate) const USER: &str = "rewind";

/// Password of [`USER`]; the tests hand it over as `PASSWORD_ENV`.
pub(crate) const PASSWORD: &str = "pw:with\\escapes";

/// Name of the environment variable the test specs name for the password.
pub(crate) const PASSWORD_ENV: &str = "REWIND_TEST_PG_PASSWORD";

const MISSING: &str = "PostgreSQL server programs not found (`initdb`, `postgres`, `psql`): \
                       install the Debian package `postgresql`; scripts/test installs it";

/// A running PostgreSQL server.
#[derive(Debug)]
pub(crate) struct Postgres {
    pub(crate) port: u16,
    pub(crate) process: ServerProcess,
    psql: PathBuf,
}

impl Postgres {
    /// Returns the server shared by the tests of this binary, starting it
    /// on first use.
    pub(crate) fn shared() -> &'static Postgres {
        static SHARED: OnceLock<Result<Postgres, String>> = OnceLock::new();
        match SHARED.get_or_init(Postgres::start) {
            Ok(server) => server,
            Err(message) => panic!("{message}"),
        }
    }

    /// Starts a server of its own, for tests that kill it.
    pub(crate) fn start() -> Result<Postgres, String> {
        let bin_dirs = postgres_bin_dirs();
        let initdb = find_program(&["initdb"], &bin_dirs).ok_or(MISSING)?;
        let postgres = find_program(&["postgres"], &bin_dirs).ok_or(MISSING)?;
        let psql = find_program(&["psql"], &bin_dirs).ok_or(MISSING)?;
        let as_root = rustix::process::geteuid().is_root();
        let owner = if as_root {
            Some(system_user(&["postgres", "nobody"]).ok_or("no `postgres` or `nobody` user")?)
        } else {
            None
        };

        let dir = server_folder("pg", owner);
        let password_file = dir.join("password");
        fs::write(&password_file, PASSWORD).map_err(|e| e.to_string())?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&password_file, Some(uid), Some(gid))
                .map_err(|e| e.to_string())?;
        }
        let mut init = Command::new(&initdb);
        init.arg(format!("--pgdata={}", dir.join("data").display()))
            .arg(format!("--username={USER}"))
            .arg(format!("--pwfile={}", password_file.display()))
            .args([
                "--auth=scram-sha-256",
                "--auth-local=trust",
                "--encoding=UTF8",
            ])
            .args(["--no-locale", "--no-sync"]);
        as_user(&mut init, owner);
        let output = init
            .output()
            .map_err(|e| format!("cannot run `{}`: {e}", initdb.display()))?;
        if !output.status.success() {
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }

        // Another process may take the port between the check and the
        // bind, so a failed start is retried on a new port.
        let mut last_log = String::new();
        for _ in 0..3 {
            let port = free_port();
            let log = fs::File::create(dir.join("server.log")).map_err(|e| e.to_string())?;
            let mut command = Command::new(&postgres);
            command
                .arg(format!("-D{}", dir.join("data").display()))
                .arg(format!("-p{port}"))
                .args(["-c", "listen_addresses=127.0.0.1"])
                .arg("-c")
                .arg(format!("unix_socket_directories={}", dir.display()))
                .args(["-c", "fsync=off", "-c", "full_page_writes=off"])
                .args(["-c", "synchronous_commit=off", "-c", "max_connections=40"])
                .stdin(Stdio::null())
                .stdout(log.try_clone().map_err(|e| e.to_string())?)
                .stderr(log);
            as_user(&mut command, owner);
            let process = spawn_server(command, &dir, Signal::INT).map_err(|e| e.to_string())?;
            let server = Postgres {
                port,
                process,
                psql: psql.clone(),
            };
            if wait_until(Duration::from_secs(30), || {
                server.query("postgres", "SELECT 1").is_ok()
            }) {
                return Ok(server);
            }
            last_log = fs::read_to_string(dir.join("server.log")).unwrap_or_default();
            stop_without_removing(&server.process);
        }
        let _ = fs::remove_dir_all(&dir);
        Err(format!("PostgreSQL did not start: {last_log}"))
    }

    /// Creates an empty database and returns its name.
    pub(crate) fn create_database(&self, prefix: &str) -> String {
        let name = unique_name(prefix);
        self.execute("postgres", &format!("CREATE DATABASE {name}"));
        name
    }

    /// Returns the URL of `database`, without the password.
    pub(crate) fn url(&self, database: &str) -> reqwest::Url {
        reqwest::Url::parse(&format!(
            "postgres://{USER}@127.0.0.1:{}/{database}",
            self.port
        ))
        .unwrap()
    }

    /// Runs `sql` in `database` and panics when it fails.
    pub(crate) fn execute(&self, database: &str, sql: &str) -> String {
        self.query(database, sql)
            .unwrap_or_else(|error| panic!("{error}\nSQL: {sql}"))
    }

    /// Runs `sql` in `database` and returns the rows psql prints, one per
    /// line with fields separated by `|`.
    pub(crate) fn query(&self, database: &str, sql: &str) -> Result<String, String> {
        let mut child = Command::new(&self.psql)
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
            ])
            .arg(format!("-p{}", self.port))
            .arg(format!("-U{USER}"))
            .arg(format!("-d{database}"))
            .args(["-f", "-"])
            .env("PGPASSWORD", PASSWORD)
            .env("PGCONNECT_TIMEOUT", "5")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(sql.as_bytes())
            .map_err(|e| e.to_string())?;
        let output = child.wait_with_output().map_err(|e| e.to_string())?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.process.stop();
    }
}

fn stop_without_removing(process: &ServerProcess) {
    super::stop(process.pid, Signal::INT);
}

/// Runs `command` as `owner` when given.
fn as_user(command: &mut Command, owner: Option<(u32, u32)>) {
    if let Some((uid, gid)) = owner {
        command.uid(uid).gid(gid);
        // Programs that run as the server user cannot enter root's
        // working folder.
        command.current_dir("/");
    }
}
