//! Backup ids and manifests: the JSON record written beside each backup's
//! data file once that file is complete. Ids are checked before they
//! become file names, so no id can reach outside its catalog folder.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::BackupError;
use crate::config::BackupDriver;

/// Version of the manifest layout written by this code.
pub const MANIFEST_FORMAT: u32 = 1;

const MAX_ID_LEN: usize = 64;

/// The id of one backup, such as `20261204T153012Z-3f9a`: the UTC time it
/// was taken, then four random hex digits. Ids sort by time as text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BackupId(String);

impl BackupId {
    /// Checks `text` and returns it as an id. Ids hold ASCII letters,
    /// digits and `-`, start with a letter or digit and have at most 64
    /// characters, so they contain no `/`, no `.` and no `..`.
    pub fn parse(text: &str) -> Result<BackupId, BackupError> {
        let valid = !text.is_empty()
            && text.len() <= MAX_ID_LEN
            && text.starts_with(|c: char| c.is_ascii_alphanumeric())
            && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if valid {
            Ok(BackupId(text.to_owned()))
        } else {
            Err(BackupError::InvalidId {
                id: text.to_owned(),
            })
        }
    }

    /// Makes a new id for a backup taken at `time`.
    pub(crate) fn generate(time: SystemTime) -> BackupId {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let stamp = humantime::format_rfc3339_seconds(time).to_string();
        let compact: String = stamp.chars().filter(|c| !matches!(c, '-' | ':')).collect();

        // The suffix only needs to differ between ids of one second: the
        // catalog does not overwrite an existing file on a collision.
        let mut hasher = blake3::Hasher::new();
        let nanos = time
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        hasher.update(&nanos.to_le_bytes());
        hasher.update(&std::process::id().to_le_bytes());
        hasher.update(&COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
        let suffix = &hasher.finalize().to_hex()[..4];
        BackupId(format!("{compact}-{suffix}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for BackupId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for BackupId {
    type Error = BackupError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        BackupId::parse(&text)
    }
}

impl From<BackupId> for String {
    fn from(id: BackupId) -> String {
        id.0
    }
}

impl AsRef<str> for BackupId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// The record of one complete backup, stored as `ID.json` beside the data
/// file. A data file without its manifest is an unfinished backup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Layout version, [`MANIFEST_FORMAT`] for manifests written now.
    pub format: u32,
    pub id: BackupId,
    pub service: String,
    pub driver: BackupDriver,
    /// When the backup started, written as RFC 3339 in UTC.
    #[serde(with = "humantime_serde")]
    pub created_at: SystemTime,
    /// The git commit that was deployed when the backup was taken.
    pub commit: Option<String>,
    /// Name of the data file in the catalog folder.
    pub file: String,
    /// Size of the data file in bytes.
    pub size: u64,
    /// BLAKE3 hash of the data file, lowercase hex.
    pub hash: String,
    /// Version line of the program that made the data, such as
    /// `pg_dump (PostgreSQL) 15.14`, or of the library for in-process drivers.
    pub tool_version: Option<String>,
    /// Version of the database server the data came from.
    pub server_version: Option<String>,
    /// How long taking the backup took.
    #[serde(rename = "duration_ms", with = "millis")]
    pub duration: Duration,
    /// Pinned backups are never removed by retention.
    #[serde(default)]
    pub pinned: bool,
}

impl Manifest {
    /// Returns the data file name a backup `id` of `driver` must have.
    pub fn file_name(id: &BackupId, driver: BackupDriver) -> String {
        format!("{id}.{}", data_extension(driver))
    }

    /// Returns the age of the backup at `now`, zero when it lies ahead.
    pub fn age(&self, now: SystemTime) -> Duration {
        now.duration_since(self.created_at).unwrap_or_default()
    }
}

/// Extension of the data file of each driver.
pub(crate) fn data_extension(driver: BackupDriver) -> &'static str {
    match driver {
        BackupDriver::Sqlite => "sqlite",
        BackupDriver::Postgres => "pgdump",
        BackupDriver::Mysql => "sql.zst",
        BackupDriver::Directory => "tar.zst",
    }
}

/// Returns the backup id of a catalog data file name such as
/// `ID.tar.zst`, or `None` for any other name.
pub(crate) fn id_of_data_file(name: &str) -> Option<BackupId> {
    BackupDriver::ALL.into_iter().find_map(|driver| {
        let stem = name
            .strip_suffix(data_extension(driver))?
            .strip_suffix('.')?;
        BackupId::parse(stem).ok()
    })
}

/// Serializes a [`Duration`] as whole milliseconds.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_rejects_path_characters() {
        let cases = [
            "",
            "..",
            "../x",
            "a/b",
            "a.b",
            "-20261204T153012Z",
            "id with space",
            "ü",
            &"a".repeat(65),
        ];
        for text in cases {
            assert!(BackupId::parse(text).is_err(), "{text:?}");
        }
        assert_eq!(
            BackupId::parse("20261204T153012Z-3f9a").unwrap().as_str(),
            "20261204T153012Z-3f9a"
        );
    }

    #[test]
    fn generated_id_names_utc_second() {
        let time = UNIX_EPOCH + Duration::from_secs(1_796_398_212);
        let id = BackupId::generate(time);

        assert_eq!(&id.as_str()[..17], "20261204T153012Z-");
        assert_eq!(id.as_str().len(), 21);
        assert!(BackupId::parse(id.as_str()).is_ok());
        assert_ne!(id, BackupId::generate(time));
    }

    #[test]
    fn data_file_names_map_back_to_ids() {
        let id = BackupId::parse("20261204T153012Z-3f9a").unwrap();
        for driver in BackupDriver::ALL {
            let name = Manifest::file_name(&id, driver);
            assert_eq!(id_of_data_file(&name), Some(id.clone()), "{name}");
        }
        assert_eq!(id_of_data_file("20261204T153012Z-3f9a.json"), None);
        assert_eq!(id_of_data_file(".tmp-x.sqlite"), None);
        assert_eq!(id_of_data_file("../x.sqlite"), None);
    }

    #[test]
    fn manifest_json_round_trips() {
        let manifest = Manifest {
            format: MANIFEST_FORMAT,
            id: BackupId::parse("20261204T153012Z-3f9a").unwrap(),
            service: "orders".to_owned(),
            driver: BackupDriver::Postgres,
            created_at: UNIX_EPOCH + Duration::from_millis(1_796_398_212_345),
            commit: Some("3f9a0c1".to_owned()),
            file: "20261204T153012Z-3f9a.pgdump".to_owned(),
            size: 42,
            hash: "ab".repeat(32),
            tool_version: Some("pg_dump (PostgreSQL) 15.14".to_owned()),
            server_version: None,
            duration: Duration::from_millis(1500),
            pinned: true,
        };
        let json = serde_json::to_string(&manifest).unwrap();

        assert!(
            json.contains("\"created_at\":\"2026-12-04T15:30:12.345000000Z\""),
            "{json}"
        );
        assert!(json.contains("\"duration_ms\":1500"), "{json}");
        assert!(json.contains("\"driver\":\"postgres\""), "{json}");
        assert_eq!(serde_json::from_str::<Manifest>(&json).unwrap(), manifest);
    }

    #[test]
    fn manifest_with_bad_id_is_rejected() {
        let json = r#"{"format":1,"id":"../../etc","service":"s","driver":"sqlite",
            "created_at":"2026-12-04T15:30:12Z","commit":null,"file":"x","size":1,
            "hash":"","tool_version":null,"server_version":null,"duration_ms":1}"#;
        let error = serde_json::from_str::<Manifest>(json).unwrap_err();

        assert!(
            error.to_string().contains("invalid backup id `../../etc`"),
            "{error}"
        );
    }
}
