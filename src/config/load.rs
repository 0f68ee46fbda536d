//! Parses `services.toml` and checks it. Every rejection points at the
//! line and column of the offending value and gives a hint for the fix.

mod backup;

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::error::Location;
use super::{Config, ConfigError, HealthSpec, RestartSpec, RollbackPolicy, ServiceSpec, Strategy};

const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
const DEFAULT_FAILURE_THRESHOLD: u32 = 3;
const DEFAULT_SUCCESS_THRESHOLD: u32 = 1;
const DEFAULT_RESTART_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_VERIFY_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_SETTLE: Duration = Duration::from_secs(30);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    state_dir: Option<Spanned<String>>,
    #[serde(default)]
    read_only: bool,
    #[serde(default)]
    services: BTreeMap<String, Spanned<RawService>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    deploy_dir: Spanned<String>,
    branch: Option<Spanned<String>>,
    #[serde(default)]
    depends_on: Vec<Spanned<String>>,
    health: RawHealth,
    restart: RawRestart,
    #[serde(default)]
    rollback: RawRollback,
    backup: Option<backup::RawBackup>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHealth {
    url: Spanned<String>,
    interval: Option<Spanned<toml::Value>>,
    timeout: Option<Spanned<toml::Value>>,
    expected_status: Option<Spanned<Vec<Spanned<i64>>>>,
    failure_threshold: Option<Spanned<i64>>,
    success_threshold: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRestart {
    command: Spanned<Vec<String>>,
    timeout: Option<Spanned<toml::Value>>,
    #[serde(default)]
    env: BTreeMap<Spanned<String>, String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRollback {
    strategy: Option<Spanned<String>>,
    verify_timeout: Option<Spanned<toml::Value>>,
    settle: Option<Spanned<toml::Value>>,
}

/// Reads and checks the configuration at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &text)
}

/// Checks configuration `text` that was read from `path`. Relative paths in
/// it start at the folder of `path`.
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let checker = Checker { path, text };
    let raw: RawConfig = toml::from_str(text).map_err(|error| checker.syntax(error))?;

    let base = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let base = std::path::absolute(&base).unwrap_or(base);

    let state_dir = match &raw.state_dir {
        Some(dir) => base.join(dir.get_ref()),
        None => default_state_dir(),
    };

    // Services in the order the file declares them.
    let mut declared: Vec<(&String, &Spanned<RawService>)> = raw.services.iter().collect();
    declared.sort_by_key(|(_, service)| service.span().start);

    if declared.is_empty() {
        return Err(checker.error(
            0..0,
            "no services declared".to_owned(),
            "add a `[services.NAME]` table for each service; `rewind demo` writes an example",
        ));
    }

    let mut services = Vec::with_capacity(declared.len());
    for (name, service) in &declared {
        services.push(checker.service(name, service, &base)?);
    }
    checker.dependencies(&declared)?;

    Ok(Config {
        path: std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
        state_dir,
        read_only: raw.read_only,
        services,
    })
}

fn default_state_dir() -> PathBuf {
    super::xdg_home("XDG_STATE_HOME", ".local/state")
        .unwrap_or_else(std::env::temp_dir)
        .join("rewind")
}

struct Checker<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Checker<'_> {
    fn error(&self, span: Range<usize>, message: String, hint: &str) -> ConfigError {
        ConfigError::Invalid {
            location: self.locate(span.start),
            message,
            hint: (!hint.is_empty()).then(|| hint.to_owned()),
        }
    }

    fn locate(&self, offset: usize) -> Location {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line_start = before.rfind('\n').map_or(0, |at| at + 1);
        let line_end = self.text[offset..]
            .find('\n')
            .map_or(self.text.len(), |at| offset + at);
        Location {
            path: self.path.to_path_buf(),
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
            source_line: self.text[line_start..line_end].trim_end().to_owned(),
        }
    }

    /// Turns a TOML or schema error into one with a hint for the fix.
    fn syntax(&self, error: toml::de::Error) -> ConfigError {
        let message = error.message().trim().replace('\n', ": ");
        let span = error.span().unwrap_or(0..0);
        if message.contains("invalid type") {
            let hint = self.wrong_type_hint(span.start);
            return self.error(span, message, &hint);
        }
        let hint = if message.contains("duplicate key") {
            "each `[services.NAME]` table may appear once: merge the two tables or rename one"
        } else if message.contains("unknown field") {
            "remove the key or fix its spelling; services.toml in the rewind repository \
             documents every setting"
        } else if message.contains("missing field") {
            "add the missing key to the table"
        } else {
            "check the TOML syntax at this spot"
        };
        self.error(span, message, hint)
    }

    /// Returns the hint for a value of the wrong type at `offset`, naming
    /// the key written before it on the same line, if any.
    fn wrong_type_hint(&self, offset: usize) -> String {
        let line = self.locate(offset).source_line;
        let key = line
            .split_once('=')
            .map(|(key, _)| key.trim().trim_matches('"'))
            .filter(|key| !key.is_empty() && !key.contains(['[', ' ']));
        match key {
            Some(table @ ("health" | "restart" | "rollback" | "backup")) => format!(
                "`{table}` is a table: write `[services.NAME.{table}]` on its own line and \
                 its keys below it, as services.toml in the rewind repository shows"
            ),
            Some(key) => format!(
                "`{key}` has a value of the wrong type. services.toml in the rewind \
                 repository shows the form of every setting"
            ),
            None => "this value has the wrong type. services.toml in the rewind \
                     repository shows the form of every setting"
                .to_owned(),
        }
    }

    fn service(
        &self,
        name: &str,
        raw: &Spanned<RawService>,
        base: &Path,
    ) -> Result<ServiceSpec, ConfigError> {
        let service = raw.get_ref();
        if !valid_name(name) {
            return Err(self.error(
                raw.span(),
                format!("invalid service name `{name}`"),
                "use letters, digits, `-`, `_` and `.` only, starting with a letter or digit",
            ));
        }

        let deploy_dir = base.join(service.deploy_dir.get_ref());
        self.deploy_dir(&service.deploy_dir, &deploy_dir)?;
        if let Some(branch) = &service.branch {
            self.branch(branch, &deploy_dir)?;
        }

        Ok(ServiceSpec {
            name: name.to_owned(),
            deploy_dir,
            branch: service
                .branch
                .as_ref()
                .map(|branch| branch.get_ref().clone()),
            depends_on: service
                .depends_on
                .iter()
                .map(|dep| dep.get_ref().clone())
                .collect(),
            health: self.health(&service.health)?,
            restart: self.restart(&service.restart)?,
            rollback: self.rollback(&service.rollback, service.backup.is_some(), name)?,
            backup: match &service.backup {
                Some(raw) => Some(self.backup(raw, base)?),
                None => None,
            },
        })
    }

    fn deploy_dir(&self, raw: &Spanned<String>, dir: &Path) -> Result<(), ConfigError> {
        if !dir.is_dir() {
            return Err(self.error(
                raw.span(),
                format!("deploy directory `{}` does not exist", dir.display()),
                "point `deploy_dir` at the git working tree the service runs from",
            ));
        }
        let is_work_tree = git2::Repository::open(dir).is_ok_and(|repo| !repo.is_bare());
        if !is_work_tree {
            return Err(self.error(
                raw.span(),
                format!(
                    "deploy directory `{}` is not a git working tree",
                    dir.display()
                ),
                "point `deploy_dir` at the top folder of a git clone (the one holding `.git`)",
            ));
        }
        Ok(())
    }

    fn branch(&self, raw: &Spanned<String>, dir: &Path) -> Result<(), ConfigError> {
        let name = raw.get_ref();
        let exists = git2::Repository::open(dir)
            .is_ok_and(|repo| repo.find_branch(name, git2::BranchType::Local).is_ok());
        if exists {
            return Ok(());
        }
        Err(self.error(
            raw.span(),
            format!("branch `{name}` not found in `{}`", dir.display()),
            "name a local branch of the deploy directory, or remove `branch` to use the one \
             checked out",
        ))
    }

    fn health(&self, raw: &RawHealth) -> Result<HealthSpec, ConfigError> {
        let url = reqwest::Url::parse(raw.url.get_ref()).map_err(|error| {
            self.error(
                raw.url.span(),
                format!("invalid health URL `{}`: {error}", raw.url.get_ref()),
                "write a full URL such as \"http://127.0.0.1:8080/health\"",
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(self.error(
                raw.url.span(),
                format!(
                    "invalid health URL `{}`: not an http or https URL",
                    raw.url.get_ref()
                ),
                "write a full URL such as \"http://127.0.0.1:8080/health\"",
            ));
        }

        if let Some(empty) = raw
            .expected_status
            .as_ref()
            .filter(|list| list.get_ref().is_empty())
        {
            return Err(self.error(
                empty.span(),
                "empty `expected_status`".to_owned(),
                "list the passing status codes, such as [200], or remove the key to accept \
                 any 2xx or 3xx",
            ));
        }
        let statuses = raw
            .expected_status
            .as_ref()
            .map_or(&[][..], |list| list.get_ref());
        let mut expected_status = Vec::with_capacity(statuses.len());
        for status in statuses {
            let code = *status.get_ref();
            if !(100..=599).contains(&code) {
                return Err(self.error(
                    status.span(),
                    format!("invalid HTTP status `{code}` in `expected_status`"),
                    "status codes are between 100 and 599",
                ));
            }
            expected_status.push(code as u16);
        }

        Ok(HealthSpec {
            url,
            interval: self.duration(raw.interval.as_ref(), "interval", DEFAULT_INTERVAL)?,
            timeout: self.duration(raw.timeout.as_ref(), "timeout", DEFAULT_TIMEOUT)?,
            expected_status,
            failure_threshold: self.threshold(
                raw.failure_threshold.as_ref(),
                "failure_threshold",
                DEFAULT_FAILURE_THRESHOLD,
            )?,
            success_threshold: self.threshold(
                raw.success_threshold.as_ref(),
                "success_threshold",
                DEFAULT_SUCCESS_THRESHOLD,
            )?,
        })
    }

    fn restart(&self, raw: &RawRestart) -> Result<RestartSpec, ConfigError> {
        let command = raw.command.get_ref();
        if command
            .first()
            .is_none_or(|program| program.trim().is_empty())
        {
            return Err(self.error(
                raw.command.span(),
                "empty restart command".to_owned(),
                "write the program and its arguments as an array, such as \
                 [\"systemctl\", \"restart\", \"orders\"]",
            ));
        }
        let mut env = BTreeMap::new();
        for (name, value) in &raw.env {
            let valid = !name.get_ref().is_empty()
                && !name.get_ref().contains(['=', '\0'])
                && !value.contains('\0');
            if !valid {
                return Err(self.error(
                    name.span(),
                    format!("invalid environment variable name `{}`", name.get_ref()),
                    "names may not be empty or contain `=`, and values may not contain NUL",
                ));
            }
            env.insert(name.get_ref().clone(), value.clone());
        }
        Ok(RestartSpec {
            command: command.clone(),
            timeout: self.duration(raw.timeout.as_ref(), "timeout", DEFAULT_RESTART_TIMEOUT)?,
            env,
        })
    }

    fn rollback(
        &self,
        raw: &RawRollback,
        has_backup: bool,
        service: &str,
    ) -> Result<RollbackPolicy, ConfigError> {
        let strategy = match &raw.strategy {
            None => Strategy::Code,
            Some(value) => {
                let Some(strategy) = Strategy::parse(value.get_ref()) else {
                    return Err(self.error(
                        value.span(),
                        format!("unknown rollback strategy `{}`", value.get_ref()),
                        "use \"code\", \"data\" or \"code+data\"",
                    ));
                };
                if strategy.restores_data() && !has_backup {
                    return Err(self.error(
                        value.span(),
                        format!(
                            "strategy `{}` of `{service}` restores data, but the service has \
                             no backup table",
                            strategy.as_str()
                        ),
                        &format!("add a `[services.{service}.backup]` table, or use \"code\""),
                    ));
                }
                strategy
            }
        };
        Ok(RollbackPolicy {
            strategy,
            verify_timeout: self.duration(
                raw.verify_timeout.as_ref(),
                "verify_timeout",
                DEFAULT_VERIFY_TIMEOUT,
            )?,
            settle: self.settle(raw.settle.as_ref())?,
        })
    }

    /// Reads `settle`, which unlike other durations may be zero to skip
    /// the settle time.
    fn settle(&self, raw: Option<&Spanned<toml::Value>>) -> Result<Duration, ConfigError> {
        match raw {
            Some(value)
                if value.get_ref().as_str().is_some_and(|text| {
                    humantime::parse_duration(text).is_ok_and(|parsed| parsed.is_zero())
                }) =>
            {
                Ok(Duration::ZERO)
            }
            other => self.duration(other, "settle", DEFAULT_SETTLE),
        }
    }

    fn duration(
        &self,
        raw: Option<&Spanned<toml::Value>>,
        key: &str,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        let Some(raw) = raw else {
            return Ok(default);
        };
        const HINT: &str =
            "write a positive duration with a unit, such as \"500ms\", \"2s\" or \"1m\"";
        let parsed = match raw.get_ref() {
            toml::Value::String(text) if text.trim_start().starts_with('-') => {
                return Err(self.error(
                    raw.span(),
                    format!("invalid duration `{text}` for `{key}`: durations cannot be negative"),
                    HINT,
                ));
            }
            toml::Value::String(text) => humantime::parse_duration(text).map_err(|error| {
                self.error(
                    raw.span(),
                    format!("invalid duration `{text}` for `{key}`: {error}"),
                    HINT,
                )
            })?,
            other => {
                return Err(self.error(
                    raw.span(),
                    format!("invalid duration `{other}` for `{key}`: expected a string"),
                    HINT,
                ));
            }
        };
        if parsed.is_zero() {
            return Err(self.error(
                raw.span(),
                format!("`{key}` must be greater than zero"),
                HINT,
            ));
        }
        Ok(parsed)
    }

    fn threshold(
        &self,
        raw: Option<&Spanned<i64>>,
        key: &str,
        default: u32,
    ) -> Result<u32, ConfigError> {
        let Some(raw) = raw else {
            return Ok(default);
        };
        let value = *raw.get_ref();
        u32::try_from(value)
            .ok()
            .filter(|value| *value > 0)
            .ok_or_else(|| {
                self.error(
                    raw.span(),
                    format!("invalid `{key}` `{value}`: must be a whole number of at least 1"),
                    "write the number of probes in a row, such as 3",
                )
            })
    }

    /// Checks that every dependency names a declared service and that the
    /// dependencies form no cycle.
    fn dependencies(
        &self,
        declared: &[(&String, &Spanned<RawService>)],
    ) -> Result<(), ConfigError> {
        let index: HashMap<&str, usize> = declared
            .iter()
            .enumerate()
            .map(|(position, (name, _))| (name.as_str(), position))
            .collect();

        for (name, service) in declared {
            for dep in &service.get_ref().depends_on {
                if dep.get_ref() == *name {
                    return Err(self.error(
                        dep.span(),
                        format!("service `{name}` depends on itself"),
                        "remove it from its own `depends_on`",
                    ));
                }
                if !index.contains_key(dep.get_ref().as_str()) {
                    let known: Vec<&str> = declared.iter().map(|(n, _)| n.as_str()).collect();
                    return Err(self.error(
                        dep.span(),
                        format!(
                            "service `{name}` depends on unknown service `{}`",
                            dep.get_ref()
                        ),
                        &format!(
                            "declare `[services.{}]` or use one of: {}",
                            dep.get_ref(),
                            known.join(", ")
                        ),
                    ));
                }
            }
        }

        if let Some(cycle) = find_cycle(declared, &index) {
            let first = declared[cycle[0]].1;
            let names: Vec<&str> = cycle.iter().map(|&at| declared[at].0.as_str()).collect();
            let span = first
                .get_ref()
                .depends_on
                .iter()
                .find(|dep| dep.get_ref() == names[1])
                .map_or(first.span(), |dep| dep.span());
            return Err(self.error(
                span,
                format!("dependency cycle: {}", names.join(" -> ")),
                "remove one `depends_on` entry of the cycle",
            ));
        }
        Ok(())
    }
}

/// Returns the services of one dependency cycle, the first repeated at the
/// end, or `None` when there is no cycle.
fn find_cycle(
    declared: &[(&String, &Spanned<RawService>)],
    index: &HashMap<&str, usize>,
) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }

    fn visit(
        node: usize,
        declared: &[(&String, &Spanned<RawService>)],
        index: &HashMap<&str, usize>,
        marks: &mut [Mark],
        path: &mut Vec<usize>,
    ) -> Option<Vec<usize>> {
        marks[node] = Mark::OnPath;
        path.push(node);
        for dep in &declared[node].1.get_ref().depends_on {
            let next = index[dep.get_ref().as_str()];
            match marks[next] {
                Mark::OnPath => {
                    let start = path.iter().position(|&at| at == next).unwrap_or(0);
                    let mut cycle = path[start..].to_vec();
                    cycle.push(next);
                    return Some(cycle);
                }
                Mark::New => {
                    if let Some(cycle) = visit(next, declared, index, marks, path) {
                        return Some(cycle);
                    }
                }
                Mark::Done => {}
            }
        }
        path.pop();
        marks[node] = Mark::Done;
        None
    }

    let mut marks = vec![Mark::New; declared.len()];
    for start in 0..declared.len() {
        if marks[start] == Mark::New {
            let mut path = Vec::new();
            if let Some(cycle) = visit(start, declared, index, &mut marks, &mut path) {
                return Some(cycle);
            }
        }
    }
    None
}

/// Tells whether `name` can be used as a file name under the state folder.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    first_ok
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}
