//! The data of a demo service: an SQLite database or a folder of files,
//! in the format that its release declares in the `[data]` table of
//! `release.toml`. A service migrates its data forward when it starts and
//! reads it on every health check, so a release that cannot read the data
//! it finds fails its health check. Releases never migrate data backwards.

use std::path::Path;

use color_eyre::eyre::{Result, WrapErr, bail};
use rusqlite::{Connection, OpenFlags};
use serde::{Deserialize, Serialize};

/// File in the root of a `directory` store that contains its format
/// version.
pub const FORMAT_FILE: &str = "format";

/// Storage kind of a service's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Store {
    /// One SQLite database file. The schema version is `PRAGMA user_version`.
    Sqlite,
    /// A folder of text files. The format version is in [`FORMAT_FILE`].
    Directory,
}

/// The `[data]` table of a `release.toml`: the data format a release reads
/// and writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    pub store: Store,
    /// Schema version (or folder format version) this release writes.
    pub schema: u32,
    /// SQL statements, where entry N - 1 moves the schema from version
    /// N - 1 to N. Only the `sqlite` store has migrations.
    #[serde(default)]
    pub migrations: Vec<String>,
    /// The data the health check reads: an SQL query for the `sqlite`
    /// store, a subfolder whose files each contain a whole number for
    /// `directory`.
    pub check: String,
}

/// Creates the data at `path` when it is missing and migrates it forward
/// to `spec.schema`. Data with a newer schema is left as it is. Returns the
/// schema version the data has afterwards.
pub fn prepare(spec: &DataSpec, path: &Path) -> Result<u32> {
    match spec.store {
        Store::Sqlite => prepare_sqlite(spec, path),
        Store::Directory => prepare_directory(spec, path),
    }
}

/// Reads the data the way the release's request handlers do. Returns the
/// schema version, or a message that explains why this release cannot
/// read the data.
pub fn check(spec: &DataSpec, path: &Path) -> std::result::Result<u32, String> {
    match spec.store {
        Store::Sqlite => check_sqlite(spec, path),
        Store::Directory => check_directory(spec, path),
    }
}

/// Applies writes that stand for the traffic a release served: SQL
/// statements for the `sqlite` store, `RELATIVE_PATH=CONTENTS` lines for
/// `directory`.
pub fn write(spec: &DataSpec, path: &Path, writes: &[&str]) -> Result<()> {
    match spec.store {
        Store::Sqlite => {
            let connection = open_sqlite(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
            for statement in writes {
                connection.execute_batch(statement).wrap_err_with(|| {
                    format!("failed to run `{statement}` on `{}`", path.display())
                })?;
            }
            Ok(())
        }
        Store::Directory => {
            for line in writes {
                let Some((relative, contents)) = line.split_once('=') else {
                    bail!("invalid directory write `{line}`: expected RELATIVE_PATH=CONTENTS");
                };
                let file = path.join(relative);
                if let Some(parent) = file.parent() {
                    std::fs::create_dir_all(parent)
                        .wrap_err_with(|| format!("failed to create `{}`", parent.display()))?;
                }
                std::fs::write(&file, format!("{contents}\n"))
                    .wrap_err_with(|| format!("failed to write `{}`", file.display()))?;
            }
            Ok(())
        }
    }
}

fn prepare_sqlite(spec: &DataSpec, path: &Path) -> Result<u32> {
    if spec.migrations.len() != spec.schema as usize {
        bail!(
            "release declares schema {} with {} migrations; it needs one migration per version",
            spec.schema,
            spec.migrations.len()
        );
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .wrap_err_with(|| format!("failed to create `{}`", parent.display()))?;
    }
    let mut connection = open_sqlite(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
    )?;
    let found = user_version(&connection, path)?;
    if found >= spec.schema {
        if found > spec.schema {
            tracing::warn!(
                path = %path.display(),
                found,
                expected = spec.schema,
                "database schema is newer than this release; leaving it as it is"
            );
        }
        return Ok(found);
    }

    // All pending migrations and the new version commit together, so a
    // crash never leaves a half-migrated schema.
    let transaction = connection
        .transaction()
        .wrap_err_with(|| format!("failed to start a transaction on `{}`", path.display()))?;
    for (index, migration) in spec.migrations.iter().enumerate().skip(found as usize) {
        transaction.execute_batch(migration).wrap_err_with(|| {
            format!(
                "migration to schema {} failed on `{}`",
                index + 1,
                path.display()
            )
        })?;
    }
    transaction
        .pragma_update(None, "user_version", spec.schema)
        .wrap_err_with(|| format!("failed to set the schema version of `{}`", path.display()))?;
    transaction
        .commit()
        .wrap_err_with(|| format!("failed to commit the migration of `{}`", path.display()))?;
    tracing::info!(path = %path.display(), from = found, to = spec.schema, "migrated the database");
    Ok(spec.schema)
}

fn check_sqlite(spec: &DataSpec, path: &Path) -> std::result::Result<u32, String> {
    if !path.is_file() {
        return Err(format!("database `{}` does not exist", path.display()));
    }
    let connection = open_sqlite(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|error| format!("{error:#}"))?;
    let found = user_version(&connection, path).map_err(|error| format!("{error:#}"))?;
    let read = connection
        .prepare(&spec.check)
        .and_then(|mut statement| statement.query([])?.next().map(|_| ()));
    match read {
        Ok(()) => Ok(found),
        Err(error) if found != spec.schema => Err(format!(
            "database schema {found} is not readable by this release, which reads schema {}: {error}",
            spec.schema
        )),
        Err(error) => Err(format!("database read failed: {error}")),
    }
}

fn open_sqlite(path: &Path, flags: OpenFlags) -> Result<Connection> {
    let connection = Connection::open_with_flags(path, flags)
        .wrap_err_with(|| format!("failed to open database `{}`", path.display()))?;
    // A restore or a backup may hold a lock for a moment.
    connection
        .busy_timeout(std::time::Duration::from_secs(2))
        .wrap_err_with(|| format!("failed to configure `{}`", path.display()))?;
    Ok(connection)
}

fn user_version(connection: &Connection, path: &Path) -> Result<u32> {
    connection
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .wrap_err_with(|| format!("failed to read the schema version of `{}`", path.display()))
}

fn prepare_directory(spec: &DataSpec, path: &Path) -> Result<u32> {
    if !spec.migrations.is_empty() {
        bail!("the `directory` store has no migrations; remove `migrations`");
    }
    std::fs::create_dir_all(path.join(&spec.check))
        .wrap_err_with(|| format!("failed to create `{}`", path.display()))?;
    let found = read_format(path).map_err(color_eyre::eyre::Report::msg)?;
    if found >= spec.schema {
        return Ok(found);
    }
    let file = path.join(FORMAT_FILE);
    std::fs::write(&file, format!("{}\n", spec.schema))
        .wrap_err_with(|| format!("failed to write `{}`", file.display()))?;
    Ok(spec.schema)
}

fn check_directory(spec: &DataSpec, path: &Path) -> std::result::Result<u32, String> {
    let found = read_format(path)?;
    if found > spec.schema {
        return Err(format!(
            "data format {found} in `{}` is newer than this release reads ({})",
            path.display(),
            spec.schema
        ));
    }
    let folder = path.join(&spec.check);
    let entries = std::fs::read_dir(&folder)
        .map_err(|error| format!("cannot read `{}`: {error}", folder.display()))?;
    for entry in entries {
        let file = entry
            .map_err(|error| format!("cannot read `{}`: {error}", folder.display()))?
            .path();
        let text = std::fs::read_to_string(&file)
            .map_err(|error| format!("cannot read `{}`: {error}", file.display()))?;
        if text.trim().parse::<u64>().is_err() {
            return Err(format!(
                "`{}` does not contain a whole number: `{}`",
                file.display(),
                text.trim()
            ));
        }
    }
    Ok(found)
}

/// Reads the format version of a `directory` store, 0 when the folder has
/// no format file yet.
fn read_format(path: &Path) -> std::result::Result<u32, String> {
    let file = path.join(FORMAT_FILE);
    match std::fs::read_to_string(&file) {
        Ok(text) => text.trim().parse().map_err(|_| {
            format!(
                "invalid format version `{}` in `{}`",
                text.trim(),
                file.display()
            )
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(error) => Err(format!("cannot read `{}`: {error}", file.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite_spec(schema: u32, check: &str) -> DataSpec {
        let migrations = [
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, charge_id TEXT)",
            "ALTER TABLE orders ADD COLUMN total_cents INTEGER",
            "ALTER TABLE orders RENAME COLUMN charge_id TO payment_id",
        ];
        DataSpec {
            store: Store::Sqlite,
            schema,
            migrations: migrations[..schema as usize]
                .iter()
                .map(|sql| (*sql).to_owned())
                .collect(),
            check: check.to_owned(),
        }
    }

    #[test]
    fn prepare_migrates_forward() {
        let folder = tempfile::tempdir().unwrap();
        let database = folder.path().join("data/orders.db");

        let first = prepare(&sqlite_spec(1, "SELECT charge_id FROM orders"), &database).unwrap();
        let second = sqlite_spec(2, "SELECT charge_id, total_cents FROM orders");
        let migrated = prepare(&second, &database).unwrap();

        assert_eq!(first, 1);
        assert_eq!(migrated, 2);
        assert_eq!(check(&second, &database), Ok(2));
    }

    #[test]
    fn prepare_leaves_newer_schema() {
        let folder = tempfile::tempdir().unwrap();
        let database = folder.path().join("orders.db");
        prepare(&sqlite_spec(3, "SELECT payment_id FROM orders"), &database).unwrap();

        let older = sqlite_spec(2, "SELECT charge_id, total_cents FROM orders");
        let found = prepare(&older, &database).unwrap();
        let error = check(&older, &database).unwrap_err();

        assert_eq!(found, 3);
        assert!(
            error.starts_with(
                "database schema 3 is not readable by this release, which reads schema 2: "
            ),
            "{error}"
        );
        assert!(error.contains("charge_id"), "{error}");
    }

    #[test]
    fn older_release_reads_additive_schema() {
        let folder = tempfile::tempdir().unwrap();
        let database = folder.path().join("orders.db");
        prepare(
            &sqlite_spec(2, "SELECT charge_id, total_cents FROM orders"),
            &database,
        )
        .unwrap();

        let found = check(&sqlite_spec(1, "SELECT charge_id FROM orders"), &database);

        assert_eq!(found, Ok(2));
    }

    #[test]
    fn check_names_missing_database() {
        let folder = tempfile::tempdir().unwrap();
        let database = folder.path().join("orders.db");

        let error = check(&sqlite_spec(1, "SELECT 1"), &database).unwrap_err();

        assert!(error.contains("does not exist"), "{error}");
        assert!(!database.exists());
    }

    #[test]
    fn directory_store_checks_format_and_counts() {
        let folder = tempfile::tempdir().unwrap();
        let root = folder.path().join("inventory");
        let spec = DataSpec {
            store: Store::Directory,
            schema: 1,
            migrations: Vec::new(),
            check: "stock".to_owned(),
        };

        prepare(&spec, &root).unwrap();
        write(&spec, &root, &["stock/desk-lamp=40"]).unwrap();
        assert_eq!(check(&spec, &root), Ok(1));

        write(&spec, &root, &["stock/desk-lamp=many"]).unwrap();
        let bad_count = check(&spec, &root).unwrap_err();
        assert!(bad_count.contains("whole number"), "{bad_count}");

        write(&spec, &root, &["stock/desk-lamp=40", "format=2"]).unwrap();
        let newer = check(&spec, &root).unwrap_err();
        assert!(newer.contains("data format 2"), "{newer}");
    }
}
