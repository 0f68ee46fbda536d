//! The `sqlite` driver: round trips, backups during writes, and restores
//! into databases that connections hold open.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rusqlite::Connection;

use super::{catalog_files, files_in, quiet, spec};
use crate::config::BackupSource;
use crate::engine::backup::{BackupError, Catalog};

/// Creates a database with foreign keys, non-ASCII names and text, NULLs,
/// a 1 MiB blob, a view and a trigger.
pub(super) fn make_database(path: &Path) {
    let connection = Connection::open(path).unwrap();
    connection
        .execute_batch(
            r#"
            PRAGMA foreign_keys = ON;
            CREATE TABLE authors (id INTEGER PRIMARY KEY, name TEXT NOT NULL, born INTEGER);
            CREATE TABLE "bücher" (
                id INTEGER PRIMARY KEY,
                author_id INTEGER NOT NULL REFERENCES authors(id),
                "titel" TEXT,
                cover BLOB,
                price REAL
            );
            CREATE TABLE audit (id INTEGER PRIMARY KEY, note TEXT);
            CREATE VIEW catalogue AS
                SELECT a.name, b.titel FROM authors a JOIN "bücher" b ON b.author_id = a.id;
            CREATE TRIGGER book_added AFTER INSERT ON "bücher"
                BEGIN INSERT INTO audit (note) VALUES ('added ' || NEW.titel); END;
            INSERT INTO authors VALUES
                (1, 'Фёдор Достоевский', 1821), (2, '魯迅', NULL), (3, 'Zoë 🚀', 1990);
            "#,
        )
        .unwrap();
    let cover: Vec<u8> = (0..1_048_576u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    connection
        .execute(
            "INSERT INTO \"bücher\" VALUES (1, 1, 'Преступление и наказание', ?1, 9.5)",
            [&cover],
        )
        .unwrap();
    connection
        .execute_batch(
            "INSERT INTO \"bücher\" VALUES (2, 2, '狂人日记', NULL, NULL);
             INSERT INTO \"bücher\" VALUES (3, 3, NULL, x'00ff00', 0.0);",
        )
        .unwrap();
}

/// Returns the schema and every row of every table, in a stable order.
pub(super) fn snapshot(path: &Path) -> Vec<String> {
    let connection = Connection::open(path).unwrap();
    let mut lines = Vec::new();
    let mut schema = connection
        .prepare("SELECT type, name, sql FROM sqlite_master ORDER BY type, name")
        .unwrap();
    let mut tables = Vec::new();
    let rows = schema
        .query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, Option<String>>(2)?,
            ))
        })
        .unwrap();
    for row in rows {
        let (kind, name, sql) = row.unwrap();
        if kind == "table" {
            tables.push(name.clone());
        }
        lines.push(format!("{kind} {name}: {sql:?}"));
    }
    for table in tables {
        let mut select = connection
            .prepare(&format!("SELECT * FROM \"{table}\" ORDER BY rowid"))
            .unwrap();
        let columns = select.column_count();
        let rows = select
            .query_map([], |row| {
                let values: Vec<String> = (0..columns)
                    .map(|at| format!("{:?}", row.get_ref(at).unwrap()))
                    .collect();
                Ok(values.join("|"))
            })
            .unwrap();
        for row in rows {
            lines.push(format!("{table}: {}", row.unwrap()));
        }
    }
    lines
}

fn sqlite_spec(path: &Path) -> crate::config::BackupSpec {
    spec(BackupSource::Sqlite {
        path: path.to_path_buf(),
    })
}

#[tokio::test]
async fn sqlite_round_trip_restores_every_table() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("app.db");
    make_database(&live);
    let original = snapshot(&live);
    let catalog = Catalog::open(&dir.path().join("state"), "orders").unwrap();
    let spec = sqlite_spec(&live);
    let manifest = catalog.create(&spec, Some("3f9a0c1"), quiet).await.unwrap();

    let changed = Connection::open(&live).unwrap();
    changed
        .execute_batch(
            "DELETE FROM audit; UPDATE authors SET name = 'x';
             INSERT INTO \"bücher\" VALUES (4, 1, 'new', NULL, 1.0);
             DROP VIEW catalogue;",
        )
        .unwrap();
    drop(changed);
    assert_ne!(snapshot(&live), original);
    catalog
        .restore(manifest.id.as_str(), &spec, quiet)
        .await
        .unwrap();

    assert_eq!(snapshot(&live), original);
    let restored = Connection::open(&live).unwrap();
    restored
        .execute(
            "INSERT INTO \"bücher\" VALUES (5, 2, 'trigger check', NULL, NULL)",
            [],
        )
        .unwrap();
    let note: String = restored
        .query_row(
            "SELECT note FROM audit ORDER BY id DESC LIMIT 1",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(note, "added trigger check");
    assert_eq!(manifest.commit.as_deref(), Some("3f9a0c1"));
    assert_eq!(manifest.server_version, None);
    assert!(
        manifest
            .tool_version
            .as_deref()
            .unwrap()
            .starts_with("SQLite 3.")
    );
}

#[tokio::test]
async fn sqlite_backup_during_writes_is_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("busy.db");
    let setup = Connection::open(&live).unwrap();
    setup
        .execute_batch(
            "PRAGMA journal_mode=WAL; CREATE TABLE pairs (id INTEGER PRIMARY KEY, v TEXT);",
        )
        .unwrap();
    drop(setup);

    // Each transaction inserts two rows, so a consistent copy contains an even
    // number of rows.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = Arc::clone(&stop);
        let live = live.clone();
        std::thread::spawn(move || {
            let connection = Connection::open(&live).unwrap();
            connection
                .busy_timeout(std::time::Duration::from_secs(5))
                .unwrap();
            let mut transactions = 0;
            while !stop.load(Ordering::Relaxed) || transactions < 200 {
                connection
                    .execute_batch(
                        "BEGIN; INSERT INTO pairs (v) VALUES (hex(randomblob(500)));
                         INSERT INTO pairs (v) VALUES (hex(randomblob(500))); COMMIT;",
                    )
                    .unwrap();
                transactions += 1;
            }
            transactions
        })
    };
    let catalog = Catalog::open(&dir.path().join("state"), "busy").unwrap();
    let spec = sqlite_spec(&live);
    let mut manifests = Vec::new();
    for _ in 0..3 {
        manifests.push(catalog.create(&spec, None, quiet).await.unwrap());
    }
    stop.store(true, Ordering::Relaxed);
    let transactions = writer.join().unwrap();

    assert!(transactions >= 200);
    for manifest in manifests {
        let copy = Connection::open(catalog.data_path(&manifest)).unwrap();
        let rows: i64 = copy
            .query_row("SELECT count(*) FROM pairs", [], |row| row.get(0))
            .unwrap();
        let check: String = copy
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .unwrap();
        assert_eq!(rows % 2, 0, "copy holds half a transaction");
        assert_eq!(check, "ok");
    }
}

#[tokio::test]
async fn sqlite_restore_reaches_open_connection() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("wal.db");
    let service = Connection::open(&live).unwrap();
    service
        .execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;
             CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('backed up');",
        )
        .unwrap();
    let catalog = Catalog::open(&dir.path().join("state"), "wal").unwrap();
    let spec = sqlite_spec(&live);
    let manifest = catalog.create(&spec, None, quiet).await.unwrap();
    // These frames stay in the WAL: checkpoints are off.
    service
        .execute_batch("DELETE FROM t; INSERT INTO t VALUES ('after backup');")
        .unwrap();

    catalog
        .restore(manifest.id.as_str(), &spec, quiet)
        .await
        .unwrap();
    let seen: String = service
        .query_row("SELECT v FROM t", [], |row| row.get(0))
        .unwrap();
    drop(service);

    assert_eq!(seen, "backed up");
    assert!(!dir.path().join("wal.db-wal").exists(), "stale -wal file");
    assert!(!dir.path().join("wal.db-shm").exists(), "stale -shm file");
    let reopened = Connection::open(&live).unwrap();
    let rows: Vec<String> = reopened
        .prepare("SELECT v FROM t")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows, ["backed up"]);
}

#[tokio::test]
async fn sqlite_non_database_target_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("app.db");
    make_database(&live);
    let catalog = Catalog::open(&dir.path().join("state"), "orders").unwrap();
    let spec = sqlite_spec(&live);
    let manifest = catalog.create(&spec, None, quiet).await.unwrap();
    let garbage = vec![0x5a_u8; 8192];
    std::fs::write(&live, &garbage).unwrap();

    let error = catalog
        .restore(manifest.id.as_str(), &spec, quiet)
        .await
        .unwrap_err();

    assert!(
        matches!(error, BackupError::Sqlite { action: "read", .. }),
        "{error}"
    );
    assert_eq!(std::fs::read(&live).unwrap(), garbage);
}

#[tokio::test]
async fn sqlite_missing_source_leaves_catalog_empty() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("gone.db");
    let catalog = Catalog::open(&dir.path().join("state"), "orders").unwrap();

    let error = catalog
        .create(&sqlite_spec(&live), None, quiet)
        .await
        .unwrap_err();

    assert_eq!(
        error.to_string(),
        format!("`{}` does not exist", live.display())
    );
    assert_eq!(files_in(catalog.dir()), catalog_files(&[]));
    assert!(!live.exists(), "the backup created the database");
}
