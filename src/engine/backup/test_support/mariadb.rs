//! A throwaway MariaDB server: `mariadb-install-db` into a temporary
//! folder, then `mariadbd` on a free port of 127.0.0.1 with its socket in
//! that folder. The tests connect over TCP as a user with a password,
//! created by the server's `--init-file`.

use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use rustix::process::Signal;

use super::{
    ServerProcess, find_program, free_port, server_folder, spawn_server, unique_name, wait_until,
};

/// The user the tests connect as, with every privilege.
pub(crate) const USER: &str = "rewind";

/// Password of [`USER`], with characters option files must escape.
pub(crate) const PASSWORD: &str = "p\"w\\ #1";

/// Name of the environment variable the test specs name for the password.
pub(crate) const PASSWORD_ENV: &str = "REWIND_TEST_MYSQL_PASSWORD";

const MISSING: &str = "MariaDB programs not found (`mariadb-install-db`, `mariadbd`, `mariadb`): \
                       install the Debian package `mariadb-server`; scripts/test installs it";

/// A running MariaDB server.
#[derive(Debug)]
pub(crate) struct MariaDb {
    pub(crate) port: u16,
    pub(crate) process: ServerProcess,
    client: PathBuf,
}

impl MariaDb {
    /// Returns the server shared by the tests of this binary, starting it
    /// on first use.
    pub(crate) fn shared() -> &'static MariaDb {
        static SHARED: OnceLock<Result<MariaDb, String>> = OnceLock::new();
        match SHARED.get_or_init(MariaDb::start) {
            Ok(server) => server,
            Err(message) => panic!("{message}"),
        }
    }

    /// Starts a server of its own, for tests that kill it.
    pub(crate) fn start() -> Result<MariaDb, String> {
        let sbin = [PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")];
        let install =
            find_program(&["mariadb-install-db", "mysql_install_db"], &sbin).ok_or(MISSING)?;
        let server = find_program(&["mariadbd", "mysqld"], &sbin).ok_or(MISSING)?;
        let client = find_program(&["mariadb", "mysql"], &sbin).ok_or(MISSING)?;
        let as_root = rustix::process::geteuid().is_root();

        let dir = server_folder("mariadb", None);
        let data = dir.join("data");
        let mut init = Command::new(&install);
        init.arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"]);
        if as_root {
            init.arg("--user=root");
        }
        let output = init
            .output()
            .map_err(|e| format!("cannot run `{}`: {e}", install.display()))?;
        if !output.status.success() {
            return Err(format!(
                "mariadb-install-db failed: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        let escaped = PASSWORD.replace('\\', "\\\\").replace('\'', "\\'");
        fs::write(
            dir.join("init.sql"),
            format!(
                "CREATE USER IF NOT EXISTS '{USER}'@'127.0.0.1' IDENTIFIED BY '{escaped}';\n\
                 GRANT ALL PRIVILEGES ON *.* TO '{USER}'@'127.0.0.1' WITH GRANT OPTION;\n"
            ),
        )
        .map_err(|e| e.to_string())?;

        let mut last_log = String::new();
        for _ in 0..3 {
            let port = free_port();
            let mut command = Command::new(&server);
            command
                .arg("--no-defaults")
                .arg(format!("--datadir={}", data.display()))
                .arg(format!("--socket={}", dir.join("mariadb.sock").display()))
                .arg(format!("--port={port}"))
                .args([
                    "--bind-address=127.0.0.1",
                    "--skip-name-resolve",
                    "--skip-log-bin",
                ])
                .arg(format!("--pid-file={}", dir.join("mariadbd.pid").display()))
                .arg(format!("--init-file={}", dir.join("init.sql").display()))
                .arg(format!("--log-error={}", dir.join("error.log").display()))
                .args([
                    "--innodb-buffer-pool-size=64M",
                    "--innodb-flush-log-at-trx-commit=0",
                ])
                .args([
                    "--character-set-server=utf8mb4",
                    "--collation-server=utf8mb4_bin",
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            if as_root {
                command.arg("--user=root");
            }
            let process = spawn_server(command, &dir, Signal::TERM).map_err(|e| e.to_string())?;
            let server = MariaDb {
                port,
                process,
                client: client.clone(),
            };
            if wait_until(Duration::from_secs(60), || {
                server.query("mysql", "SELECT 1").is_ok()
            }) {
                return Ok(server);
            }
            last_log = fs::read_to_string(dir.join("error.log")).unwrap_or_default();
            super::stop(server.process.pid, Signal::TERM);
        }
        let _ = fs::remove_dir_all(&dir);
        Err(format!("MariaDB did not start: {last_log}"))
    }

    /// Creates an empty database and returns its name.
    pub(crate) fn create_database(&self, prefix: &str) -> String {
        let name = unique_name(prefix);
        self.execute(
            "mysql",
            &format!("CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"),
        );
        name
    }

    /// Returns the URL of `database`, without the password.
    pub(crate) fn url(&self, database: &str) -> reqwest::Url {
        reqwest::Url::parse(&format!(
            "mysql://{USER}@127.0.0.1:{}/{database}",
            self.port
        ))
        .unwrap()
    }

    /// Runs `sql` in `database` and panics when it fails.
    pub(crate) fn execute(&self, database: &str, sql: &str) -> String {
        self.query(database, sql)
            .unwrap_or_else(|error| panic!("{error}\nSQL: {sql}"))
    }

    /// Runs `sql` in `database` and returns the rows, one per line with
    /// tab-separated fields.
    pub(crate) fn query(&self, database: &str, sql: &str) -> Result<String, String> {
        let mut child = Command::new(&self.client)
            .args(["--no-defaults", "--protocol=TCP", "--host=127.0.0.1"])
            .arg(format!("--port={}", self.port))
            .arg(format!("--user={USER}"))
            .args([
                "--batch",
                "--skip-column-names",
                "--default-character-set=utf8mb4",
            ])
            .arg(database)
            .env("MYSQL_PWD", PASSWORD)
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

impl Drop for MariaDb {
    fn drop(&mut self) {
        self.process.stop();
    }
}
