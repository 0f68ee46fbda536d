//! The external programs the database drivers run: where they are found,
//! which Debian package installs them, their versions, and the 0600 files
//! that hand them passwords. Passwords never appear on a command line.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::NamedTempFile;

use super::durable::TEMP_PREFIX;
use super::pipe::{Invocation, PipeError, run_piped};
use super::{BackupError, Progress, ProgressFn};
use crate::config::DatabaseSpec;

/// Time limit for `TOOL --version`.
const VERSION_TIMEOUT: Duration = Duration::from_secs(10);

/// Number of stderr lines kept for error messages.
const STDERR_LINES: usize = 20;

/// Folder holding one folder per installed PostgreSQL major version on
/// Debian, each with a `bin` folder.
const POSTGRES_LIB: &str = "/usr/lib/postgresql";

/// An external program that a driver runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tool {
    PgDump,
    PgRestore,
    MysqlDump,
    MysqlClient,
}

impl Tool {
    /// Returns the name used in messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Tool::PgDump => "pg_dump",
            Tool::PgRestore => "pg_restore",
            Tool::MysqlDump => "mysqldump",
            Tool::MysqlClient => "mysql",
        }
    }

    /// Returns the program names to look for, preferred first. MariaDB
    /// 11 warns when its tools run under their MySQL names.
    fn program_names(self) -> &'static [&'static str] {
        match self {
            Tool::PgDump => &["pg_dump"],
            Tool::PgRestore => &["pg_restore"],
            Tool::MysqlDump => &["mariadb-dump", "mysqldump"],
            Tool::MysqlClient => &["mariadb", "mysql"],
        }
    }

    /// Returns the Debian package that installs the tool.
    pub(crate) fn package(self) -> &'static str {
        match self {
            Tool::PgDump | Tool::PgRestore => "postgresql-client",
            Tool::MysqlDump | Tool::MysqlClient => "mariadb-client",
        }
    }

    fn is_postgres(self) -> bool {
        matches!(self, Tool::PgDump | Tool::PgRestore)
    }
}

/// Folders searched for tools: some folders first, then, unless turned
/// off, the newest `/usr/lib/postgresql/*/bin` for PostgreSQL tools and
/// the folders of `PATH`.
#[derive(Debug, Clone)]
pub(crate) struct ToolFinder {
    first: Vec<PathBuf>,
    system: bool,
}

impl ToolFinder {
    pub(crate) fn system() -> ToolFinder {
        ToolFinder {
            first: Vec::new(),
            system: true,
        }
    }

    /// Looks in `dirs` and nowhere else.
    #[cfg(test)]
    pub(crate) fn only(dirs: Vec<PathBuf>) -> ToolFinder {
        ToolFinder {
            first: dirs,
            system: false,
        }
    }

    /// Looks in `dir` before the system folders.
    #[cfg(test)]
    pub(crate) fn with_first(dir: PathBuf) -> ToolFinder {
        ToolFinder {
            first: vec![dir],
            system: true,
        }
    }

    /// Returns the path of `tool`, or an error naming its package.
    pub(crate) fn find(&self, tool: Tool) -> Result<PathBuf, BackupError> {
        let mut dirs = self.first.clone();
        if self.system {
            if tool.is_postgres() {
                dirs.extend(postgres_bin_dirs());
            }
            if let Some(path) = std::env::var_os("PATH") {
                dirs.extend(std::env::split_paths(&path));
            }
        }
        for name in tool.program_names() {
            for dir in &dirs {
                let candidate = dir.join(name);
                if is_executable(&candidate) {
                    return Ok(candidate);
                }
            }
        }
        Err(BackupError::ToolMissing {
            tool: tool.name(),
            package: tool.package(),
        })
    }
}

/// Returns the `bin` folders of installed PostgreSQL versions, newest first.
pub(crate) fn postgres_bin_dirs() -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(POSTGRES_LIB) else {
        return Vec::new();
    };
    let mut versions: Vec<(u32, PathBuf)> = entries
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let major = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((major, entry.path().join("bin")))
        })
        .collect();
    versions.sort_by_key(|(major, _)| std::cmp::Reverse(*major));
    versions.into_iter().map(|(_, dir)| dir).collect()
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// Returns the first line `program --version` prints.
pub(crate) async fn version(tool: Tool, program: &Path) -> Result<String, BackupError> {
    let invocation = Invocation {
        argv: vec![program.to_string_lossy().into_owned(), "--version".into()],
        cwd: PathBuf::from("/"),
        env: Vec::new(),
        timeout: VERSION_TIMEOUT,
    };
    let (output, _) = run_tool(tool, &invocation, None, Vec::new(), None).await?;
    let text = String::from_utf8_lossy(&output);
    Ok(text.lines().next().unwrap_or_default().trim().to_owned())
}

/// Runs `tool` through [`run_piped`], passing each stderr line to
/// `progress`. Returns the output sink and the last stderr lines.
pub(crate) async fn run_tool<W: Write + Send + 'static>(
    tool: Tool,
    invocation: &Invocation,
    stdin: Option<Box<dyn Read + Send>>,
    stdout: W,
    progress: Option<&ProgressFn>,
) -> Result<(W, String), BackupError> {
    let mut tail = VecDeque::with_capacity(STDERR_LINES);
    let result = run_piped(invocation, stdin, stdout, |line| {
        if let Some(progress) = progress {
            progress(Progress::ToolOutput(line.clone()));
        }
        if tail.len() == STDERR_LINES {
            tail.pop_front();
        }
        tail.push_back(line);
    })
    .await;
    let stderr = Vec::from(tail).join("\n");
    match result {
        Ok(stdout) => Ok((stdout, stderr)),
        Err(source) => Err(BackupError::ToolFailed {
            tool: tool.name(),
            stderr,
            source,
        }),
    }
}

/// Turns a failed write of a tool's output into the I/O error it is, such
/// as a full disk, instead of a failure of the tool.
pub(crate) fn blame_output(error: BackupError, path: &Path) -> BackupError {
    match error {
        BackupError::ToolFailed {
            source: PipeError::Output { source, .. },
            ..
        } => BackupError::io("write backup data to", path, source),
        other => other,
    }
}

/// Returns the major version in a version line such as
/// `pg_restore (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)`: `(15, 0)`,
/// or `(9, 6)` for the two-part majors before PostgreSQL 10.
pub(crate) fn postgres_major(version_line: &str) -> Option<(u32, u32)> {
    let number = version_line
        .split_whitespace()
        .find(|word| word.starts_with(|c: char| c.is_ascii_digit()))?;
    let mut parts = number.split('.').map(|part| {
        let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
        digits.parse::<u32>().ok()
    });
    let first = parts.next()??;
    if first >= 10 {
        Some((first, 0))
    } else {
        Some((first, parts.next().flatten().unwrap_or(0)))
    }
}

/// Reads the password named by `database.password_env` through `lookup`.
pub(crate) fn password(
    database: &DatabaseSpec,
    lookup: SecretLookup,
) -> Result<Option<String>, BackupError> {
    match &database.password_env {
        None => Ok(None),
        Some(name) => lookup(name)
            .map(Some)
            .ok_or_else(|| BackupError::PasswordMissing { name: name.clone() }),
    }
}

/// Reads a secret by environment variable name.
pub(crate) type SecretLookup = fn(&str) -> Option<String>;

/// Reads secrets from the process environment.
pub(crate) fn environment(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// A file with mode 0600 holding a password for one tool run, removed
/// when dropped.
pub(crate) struct SecretFile(NamedTempFile);

impl SecretFile {
    /// Writes `contents` to a new file in `dir`, which should be private.
    pub(crate) fn write_in(dir: &Path, contents: &str) -> Result<SecretFile, BackupError> {
        let mut file = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .permissions(fs::Permissions::from_mode(0o600))
            .tempfile_in(dir)
            .map_err(|source| BackupError::io("create a password file in", dir, source))?;
        file.write_all(contents.as_bytes())
            .and_then(|()| file.flush())
            .map_err(|source| BackupError::io("write", file.path().to_path_buf(), source))?;
        Ok(SecretFile(file))
    }

    pub(crate) fn path(&self) -> &Path {
        self.0.path()
    }

    /// Returns the path as a value for an environment variable.
    pub(crate) fn env_value(&self) -> Option<OsString> {
        Some(self.0.path().as_os_str().to_owned())
    }
}

/// Returns a `.pgpass` line that gives `password` to every connection.
/// libpq reads `\` as an escape and `:` as a field separator.
pub(crate) fn pgpass_line(password: &str) -> String {
    let escaped = password.replace('\\', "\\\\").replace(':', "\\:");
    format!("*:*:*:*:{escaped}\n")
}

/// Returns a MySQL option file with a `[client]` group that sets `user`
/// and `password`. Values are double-quoted with `\` escapes, as the
/// MySQL and MariaDB option file parsers read them.
pub(crate) fn mysql_option_file(user: Option<&str>, password: Option<&str>) -> String {
    let quote = |value: &str| {
        let mut quoted = String::with_capacity(value.len() + 2);
        quoted.push('"');
        for c in value.chars() {
            match c {
                '\\' => quoted.push_str("\\\\"),
                '"' => quoted.push_str("\\\""),
                '\n' => quoted.push_str("\\n"),
                '\r' => quoted.push_str("\\r"),
                '\t' => quoted.push_str("\\t"),
                other => quoted.push(other),
            }
        }
        quoted.push('"');
        quoted
    };
    let mut text = String::from("[client]\n");
    if let Some(user) = user {
        text.push_str(&format!("user={}\n", quote(user)));
    }
    if let Some(password) = password {
        text.push_str(&format!("password={}\n", quote(password)));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_major_reads_version_lines() {
        let cases = [
            (
                "pg_dump (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)",
                Some((15, 0)),
            ),
            ("pg_restore (PostgreSQL) 17devel", Some((17, 0))),
            ("pg_dump (PostgreSQL) 9.6.24", Some((9, 6))),
            ("pg_dump", None),
        ];
        for (line, expected) in cases {
            assert_eq!(postgres_major(line), expected, "{line}");
        }
    }

    #[test]
    fn pgpass_line_escapes_separators() {
        assert_eq!(pgpass_line("a:b\\c"), "*:*:*:*:a\\:b\\\\c\n");
    }

    #[test]
    fn option_file_quotes_values() {
        let text = mysql_option_file(Some("app"), Some("p\"w\\d #x"));

        assert_eq!(
            text,
            "[client]\nuser=\"app\"\npassword=\"p\\\"w\\\\d #x\"\n"
        );
    }

    #[test]
    fn missing_tool_names_its_package() {
        let finder = ToolFinder::only(vec![PathBuf::from("/nonexistent")]);
        let error = finder.find(Tool::PgDump).unwrap_err();

        assert_eq!(error.to_string(), "`pg_dump` is not installed");
        assert_eq!(
            error.hint().unwrap(),
            "install the Debian package `postgresql-client` (apt-get install \
             postgresql-client) or put `pg_dump` on PATH"
        );
    }

    #[test]
    fn secret_file_has_mode_0600_and_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let file = SecretFile::write_in(dir.path(), "secret").unwrap();
        let path = file.path().to_path_buf();
        let mode = fs::metadata(&path).unwrap().permissions().mode();

        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(fs::read_to_string(&path).unwrap(), "secret");
        drop(file);
        assert!(!path.exists());
    }
}
