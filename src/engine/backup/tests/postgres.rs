//! The `postgres` driver against a throwaway PostgreSQL server: round
//! trips, failing and killed dumps, a restore that rolls back, version
//! checks, passwords and a full disk.

use std::fs;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::process::Signal;

use super::{
    Recorder, SmallDisk, catalog_files, database, edit_manifest, fake_tool, files_in, quiet, spec,
    test_secrets,
};
use crate::config::{BackupSource, BackupSpec, DatabaseSpec};
use crate::engine::backup::test_support::Postgres;
use crate::engine::backup::test_support::postgres::PASSWORD_ENV;
use crate::engine::backup::tools::ToolFinder;
use crate::engine::backup::{BackupError, Catalog, Progress};

const SCHEMA: &str = r#"
CREATE TABLE authors (id serial PRIMARY KEY, name text NOT NULL, born int);
CREATE TABLE "bücher" (
    id serial PRIMARY KEY,
    author_id int NOT NULL REFERENCES authors(id),
    "titel" text,
    cover bytea,
    price numeric(8,2)
);
CREATE TABLE audit (id serial PRIMARY KEY, note text);
CREATE VIEW catalogue AS
    SELECT a.name, b."titel" FROM authors a JOIN "bücher" b ON b.author_id = a.id;
CREATE FUNCTION log_book() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO audit (note) VALUES ('added ' || NEW."titel"); RETURN NEW; END
$$;
CREATE TRIGGER book_added AFTER INSERT ON "bücher" FOR EACH ROW EXECUTE FUNCTION log_book();
INSERT INTO authors (name, born) VALUES ('Фёдор Достоевский', 1821), ('魯迅', NULL), ('Zoë 🚀', 1990);
INSERT INTO "bücher" (author_id, "titel", cover, price) VALUES
    (1, 'Преступление и наказание',
     (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 40000) i)::bytea, 9.5),
    (2, '狂人日记', NULL, NULL),
    (3, NULL, '\x00ff00', 0);
"#;

/// Returns a hash and count of every table's rows, the view and trigger
/// definitions and the sequence positions.
fn snapshot(server: &Postgres, db: &str) -> Vec<String> {
    let tables = server.execute(
        db,
        "SELECT table_name FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1",
    );
    let mut lines = Vec::new();
    for table in tables.lines() {
        lines.push(server.execute(
            db,
            &format!(
                "SELECT '{table}', count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) \
                 FROM \"{table}\" t"
            ),
        ));
    }
    lines.push(server.execute(
        db,
        "SELECT relname, pg_get_viewdef(oid) FROM pg_class WHERE relkind = 'v' \
         AND relnamespace = 'public'::regnamespace ORDER BY 1",
    ));
    lines.push(server.execute(
        db,
        "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1",
    ));
    lines.push(server.execute(db, "SELECT last_value FROM authors_id_seq"));
    lines
}

/// Creates a database with the test schema and returns it with its spec
/// and a catalog.
fn setup(server: &Postgres) -> (tempfile::TempDir, String, BackupSpec, Catalog) {
    let db = server.create_database("pg");
    server.execute(&db, SCHEMA);
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(BackupSource::Postgres(database(
        server.url(&db),
        PASSWORD_ENV,
    )));
    let catalog = Catalog::open(dir.path(), "orders")
        .unwrap()
        .with_secrets(test_secrets);
    (dir, db, spec, catalog)
}

#[tokio::test]
async fn postgres_round_trip_restores_every_table() {
    let server = Postgres::shared();
    let (_dir, db, spec, catalog) = setup(server);
    let original = snapshot(server, &db);
    let manifest = catalog.create(&spec, Some("c0ffee"), quiet).await.unwrap();

    server.execute(
        &db,
        "DELETE FROM audit; UPDATE authors SET name = 'x'; DROP VIEW catalogue;
         INSERT INTO \"bücher\" (author_id, \"titel\") VALUES (1, 'new');",
    );
    assert_ne!(snapshot(server, &db), original);
    let progress = Recorder::default();
    catalog
        .restore(manifest.id.as_str(), &spec, progress.callback())
        .await
        .unwrap();

    assert_eq!(snapshot(server, &db), original);
    server.execute(
        &db,
        "INSERT INTO \"bücher\" (author_id, \"titel\") VALUES (2, 'trigger check')",
    );
    assert_eq!(
        server.execute(&db, "SELECT note FROM audit ORDER BY id DESC LIMIT 1"),
        "added trigger check\n"
    );
    assert!(
        manifest
            .tool_version
            .as_deref()
            .unwrap()
            .starts_with("pg_dump (PostgreSQL) ")
    );
    assert!(
        manifest
            .server_version
            .as_deref()
            .unwrap()
            .starts_with(|c: char| c.is_ascii_digit())
    );
    assert!(
        progress
            .tool_lines()
            .iter()
            .any(|line| line.starts_with("pg_restore: "))
    );
}

#[tokio::test]
async fn postgres_failed_restore_rolls_back() {
    let server = Postgres::shared();
    let (_dir, db, spec, catalog) = setup(server);
    let manifest = catalog.create(&spec, None, quiet).await.unwrap();
    // A table outside the backup that references `authors` makes its DROP
    // fail halfway through the restore.
    server.execute(
        &db,
        "UPDATE authors SET name = 'changed'; CREATE TABLE extra (a int REFERENCES authors(id));",
    );
    let before = snapshot(server, &db);

    let error = catalog
        .restore(manifest.id.as_str(), &spec, quiet)
        .await
        .unwrap_err();

    match &error {
        BackupError::ToolFailed { tool, stderr, .. } => {
            assert_eq!(*tool, "pg_restore");
            assert!(stderr.contains("depend"), "{stderr}");
        }
        other => panic!("expected pg_restore to fail, got {other}"),
    }
    assert_eq!(snapshot(server, &db), before);
}

#[tokio::test]
async fn postgres_newer_pg_dump_is_rejected() {
    let server = Postgres::shared();
    let (_dir, db, spec, catalog) = setup(server);
    let manifest = catalog.create(&spec, None, quiet).await.unwrap();
    edit_manifest(&catalog, &manifest.id, |m| {
        m.tool_version = Some("pg_dump (PostgreSQL) 99.1".to_owned());
    });
    server.execute(&db, "UPDATE authors SET name = 'changed'");
    let before = snapshot(server, &db);

    let error = catalog
        .restore(manifest.id.as_str(), &spec, quiet)
        .await
        .unwrap_err();

    let message = error.to_string();
    assert!(
        message.starts_with(&format!(
            "backup `{}` was made by pg_dump `pg_dump (PostgreSQL) 99.1`, newer than the local \
             pg_restore `pg_restore (PostgreSQL) ",
            manifest.id
        )),
        "{message}"
    );
    assert_eq!(snapshot(server, &db), before);
}

#[tokio::test]
async fn postgres_failing_dump_leaves_catalog_empty() {
    let server = Postgres::shared();
    let (dir, _db, spec, catalog) = setup(server);
    let tools = dir.path().join("tools");
    fs::create_dir(&tools).unwrap();
    fake_tool(
        &tools,
        "pg_dump",
        "if [ \"$1\" = --version ]; then echo 'pg_dump (PostgreSQL) 15.0'; exit 0; fi\n\
         printf 'PGDMP'; head -c 300000 /dev/zero\n\
         echo 'pg_dump: error: Dumping the contents of table \"big\" failed' >&2\n\
         exit 1",
    );
    let catalog = catalog.with_tools(ToolFinder::with_first(tools));

    let error = catalog.create(&spec, None, quiet).await.unwrap_err();

    assert_eq!(
        error.to_string(),
        "`pg_dump` failed: pg_dump: error: Dumping the contents of table \"big\" failed"
    );
    assert_eq!(files_in(catalog.dir()), catalog_files(&[]));
}

#[tokio::test]
async fn postgres_password_uses_passfile() {
    let server = Postgres::shared();
    let (dir, _db, spec, catalog) = setup(server);
    let tools = dir.path().join("tools");
    fs::create_dir(&tools).unwrap();
    let seen = dir.path().join("seen");
    fake_tool(
        &tools,
        "pg_dump",
        &format!(
            "if [ \"$1\" = --version ]; then echo 'pg_dump (PostgreSQL) 15.0'; exit 0; fi\n\
             echo \"$@\" > {seen}.args\n\
             cat \"$PGPASSFILE\" > {seen}.passfile\n\
             stat -c %a \"$PGPASSFILE\" > {seen}.mode\n\
             echo \"${{PGPASSWORD-unset}}\" > {seen}.pgpassword\n\
             printf 'dump bytes'",
            seen = seen.display()
        ),
    );
    let catalog = catalog.with_tools(ToolFinder::with_first(tools));

    let manifest = catalog.create(&spec, None, quiet).await.unwrap();

    let read = |suffix: &str| fs::read_to_string(format!("{}.{suffix}", seen.display())).unwrap();
    assert!(!read("args").contains("pw"), "{}", read("args"));
    assert_eq!(read("passfile"), "*:*:*:*:pw\\:with\\\\escapes\n");
    assert_eq!(read("mode"), "600\n");
    assert_eq!(read("pgpassword"), "unset\n");
    assert_eq!(manifest.size, 10);
    assert_eq!(files_in(catalog.dir()), catalog_files(&[&manifest]));
}

#[tokio::test]
async fn postgres_unset_password_variable_is_reported() {
    let server = Postgres::shared();
    let (_dir, db, _spec, catalog) = setup(server);
    let spec = spec(BackupSource::Postgres(DatabaseSpec {
        url: server.url(&db),
        password_env: Some("REWIND_TEST_UNSET".to_owned()),
    }));

    let error = catalog.create(&spec, None, quiet).await.unwrap_err();

    assert_eq!(
        error.to_string(),
        "environment variable `REWIND_TEST_UNSET` is not set or not valid UTF-8"
    );
    assert_eq!(files_in(catalog.dir()), catalog_files(&[]));
}

#[tokio::test]
async fn postgres_server_killed_mid_dump() {
    let server = Postgres::start().unwrap();
    let db = server.create_database("gone");
    server.execute(
        &db,
        "CREATE TABLE big AS SELECT i, md5(random()::text) || md5(random()::text) AS v \
         FROM generate_series(1, 400000) i",
    );
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::open(dir.path(), "gone")
        .unwrap()
        .with_secrets(test_secrets);
    let spec = spec(BackupSource::Postgres(database(
        server.url(&db),
        PASSWORD_ENV,
    )));
    let killed = Arc::new(AtomicBool::new(false));
    let pid = server.process.pid;
    let on_progress = {
        let killed = Arc::clone(&killed);
        move |progress: Progress| {
            if matches!(progress, Progress::Bytes { .. }) && !killed.swap(true, Ordering::SeqCst) {
                // SIGQUIT is PostgreSQL's immediate shutdown.
                let pid = rustix::process::Pid::from_raw(pid as i32).unwrap();
                rustix::process::kill_process(pid, Signal::QUIT).unwrap();
            }
        }
    };

    let error = catalog.create(&spec, None, on_progress).await.unwrap_err();

    assert!(
        killed.load(Ordering::SeqCst),
        "the dump ended before the kill"
    );
    assert!(
        matches!(
            &error,
            BackupError::ToolFailed {
                tool: "pg_dump",
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(files_in(catalog.dir()), catalog_files(&[]));
}

#[tokio::test]
async fn postgres_full_disk_leaves_catalog_empty() {
    let server = Postgres::shared();
    let (_dir, _db, spec, _) = setup(server);
    let disk = SmallDisk::mount(256);
    let catalog = Catalog::open(&disk.path, "orders")
        .unwrap()
        .with_secrets(test_secrets);

    let error = catalog.create(&spec, None, quiet).await.unwrap_err();

    assert!(matches!(&error, BackupError::Io { .. }), "{error}");
    assert_eq!(
        error.hint().unwrap(),
        "free space on that disk; nothing was replaced"
    );
    assert_eq!(files_in(catalog.dir()), catalog_files(&[]));
}
