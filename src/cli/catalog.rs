//! Helpers of the backup commands: finding a service's backup table and
//! catalog, printing backup errors with their hints, and formatting
//! backups: age, size, the version each was taken at, and the JSON entry.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use crate::config::{BackupDriver, BackupSource, BackupSpec, Config, ServiceSpec};
use crate::engine::backup::{BackupError, Catalog, Manifest, Progress};
use crate::engine::versions;

/// Number of history entries read to find the tag of a backup's commit.
const HISTORY_LIMIT: usize = 1000;

/// Minimum time between two progress lines about bytes copied.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// A service that has a backup table, with its catalog.
pub struct Target<'a> {
    pub spec: &'a ServiceSpec,
    pub backup: &'a BackupSpec,
    pub catalog: Catalog,
}

/// Finds service `name` and its backup table. When either is missing, or
/// the catalog cannot be opened, prints the error and returns exit code 2.
pub fn open<'a>(config: &'a Config, name: &str) -> Result<Target<'a>, i32> {
    let spec = config.require(name).map_err(super::unknown_service)?;
    let Some(backup) = &spec.backup else {
        eprintln!(
            "error: service `{name}` has no backup table in `{}`",
            config.path.display()
        );
        eprintln!(
            "hint: add a `[services.{name}.backup]` table with `driver` and `path` \
             (sqlite, directory) or `url` (postgres, mysql)"
        );
        return Err(super::EXIT_USAGE);
    };
    let catalog = Catalog::open(&config.state_dir, name).map_err(|error| {
        report(&error);
        super::EXIT_USAGE
    })?;
    Ok(Target {
        spec,
        backup,
        catalog,
    })
}

/// Prints `error` with its causes on one line, then its hint.
pub fn report(error: &BackupError) {
    eprintln!("error: {}", with_causes(error));
    if let Some(hint) = error.hint() {
        eprintln!("hint: {hint}");
    }
}

/// Returns the message of `error` followed by the messages of its causes.
pub fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// Returns the exit code for an error in finding a backup by id: 2 for an
/// id that is not valid, 3 for a backup that is missing or cannot be
/// trusted, 1 for anything else.
pub fn lookup_exit_code(error: &BackupError) -> i32 {
    match error {
        BackupError::InvalidId { .. } | BackupError::InvalidService { .. } => super::EXIT_USAGE,
        BackupError::NotFound { .. } | BackupError::DamagedManifest { .. } => super::EXIT_REFUSED,
        _ => super::EXIT_FAILED,
    }
}

/// Describes where a service's data lives, such as `sqlite /srv/app.db`.
pub fn describe_source(backup: &BackupSpec) -> String {
    let place = match &backup.source {
        BackupSource::Sqlite { path } | BackupSource::Directory { path } => {
            path.display().to_string()
        }
        // The configuration rejects URLs that contain a password.
        BackupSource::Postgres(database) | BackupSource::Mysql(database) => {
            database.url.to_string()
        }
    };
    format!("{} {place}", backup.driver())
}

/// Tags of the commits on a service's deploy branch, for naming the
/// version a backup was taken at.
pub struct VersionLabels {
    tags: HashMap<String, String>,
}

impl VersionLabels {
    /// Reads the history of `spec`'s deploy branch. A history that cannot
    /// be read gives no tags, so backups show short commit ids.
    pub fn read(spec: &ServiceSpec) -> VersionLabels {
        let history = versions::read(&spec.deploy_dir, spec.branch.as_deref(), HISTORY_LIMIT)
            .map(|info| info.history)
            .unwrap_or_else(|error| {
                tracing::warn!(service = %spec.name, %error, "cannot read versions for backup labels");
                Vec::new()
            });
        let tags = history
            .into_iter()
            .filter_map(|entry| Some((entry.commit, entry.tags.into_iter().next()?)))
            .collect();
        VersionLabels { tags }
    }

    /// Returns the tag of `commit`, else its first seven hex digits.
    pub fn label(&self, commit: Option<&str>) -> Option<String> {
        let commit = commit?;
        Some(
            self.tags
                .get(commit)
                .cloned()
                .unwrap_or_else(|| commit.chars().take(7).collect()),
        )
    }
}

/// One backup in the JSON output of `backups` and `backup`.
#[derive(Serialize)]
pub struct BackupJson {
    pub id: String,
    pub driver: BackupDriver,
    /// RFC 3339 in UTC, with milliseconds.
    pub created_at: String,
    pub commit: Option<String>,
    /// Tag of `commit`, else its short id.
    pub version: Option<String>,
    pub size: u64,
    pub hash: String,
    /// Absolute path of the data file.
    pub path: String,
    pub pinned: bool,
    pub tool_version: Option<String>,
    pub server_version: Option<String>,
    pub duration_ms: u64,
}

impl BackupJson {
    pub fn new(catalog: &Catalog, manifest: &Manifest, labels: &VersionLabels) -> BackupJson {
        BackupJson {
            id: manifest.id.to_string(),
            driver: manifest.driver,
            created_at: humantime::format_rfc3339_millis(manifest.created_at).to_string(),
            commit: manifest.commit.clone(),
            version: labels.label(manifest.commit.as_deref()),
            size: manifest.size,
            hash: manifest.hash.clone(),
            path: catalog.data_path(manifest).display().to_string(),
            pinned: manifest.pinned,
            tool_version: manifest.tool_version.clone(),
            server_version: manifest.server_version.clone(),
            duration_ms: u64::try_from(manifest.duration.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

/// Formats a byte count in binary units with one decimal, such as
/// `512 B` or `12.3 MiB`.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Formats an age in its largest whole unit: seconds under a minute,
/// minutes under an hour, hours under two days, else days.
pub fn format_age(age: Duration) -> String {
    let seconds = age.as_secs();
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m", seconds / 60),
        3600..172_800 => format!("{}h", seconds / 3600),
        _ => format!("{}d", seconds / 86_400),
    }
}

/// Formats the time a backup was taken as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_time(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

/// Returns a progress callback that prints the lines external tools write
/// and, at most once a second, the bytes copied so far.
pub fn print_progress(verb: &'static str) -> impl Fn(Progress) + Send + Sync + 'static {
    let last_line = Mutex::new(Instant::now());
    move |progress| match progress {
        Progress::Bytes { done, total } => {
            let mut last_line = last_line
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            if last_line.elapsed() < PROGRESS_INTERVAL {
                return;
            }
            *last_line = Instant::now();
            match total {
                Some(total) => println!("  {verb} {} of {}", format_size(done), format_size(total)),
                None => println!("  {verb} {}", format_size(done)),
            }
        }
        Progress::ToolOutput(line) => println!("      | {line}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_uses_binary_units() {
        assert_eq!(format_size(0), "0 B");
        assert_eq!(format_size(1023), "1023 B");
        assert_eq!(format_size(1024), "1.0 KiB");
        assert_eq!(format_size(1536), "1.5 KiB");
        assert_eq!(format_size(5 * 1024 * 1024), "5.0 MiB");
        assert_eq!(format_size(3 << 40), "3.0 TiB");
    }

    #[test]
    fn age_uses_largest_unit() {
        assert_eq!(format_age(Duration::from_secs(59)), "59s");
        assert_eq!(format_age(Duration::from_secs(60)), "1m");
        assert_eq!(format_age(Duration::from_secs(3599)), "59m");
        assert_eq!(format_age(Duration::from_secs(3600)), "1h");
        assert_eq!(format_age(Duration::from_secs(47 * 3600)), "47h");
        assert_eq!(format_age(Duration::from_secs(3 * 86_400)), "3d");
    }

    #[test]
    fn label_prefers_tag_over_short_id() {
        let labels = VersionLabels {
            tags: HashMap::from([("a".repeat(40), "v1.0.0".to_owned())]),
        };

        assert_eq!(labels.label(Some(&"a".repeat(40))).unwrap(), "v1.0.0");
        assert_eq!(labels.label(Some(&"b".repeat(40))).unwrap(), "bbbbbbb");
        assert_eq!(labels.label(None), None);
    }
}
