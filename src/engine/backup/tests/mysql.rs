//! The `mysql` driver against a throwaway MariaDB server: round trips,
//! failing and killed dumps, failing and incomplete restores, and
//! credentials handed over in an option file.

use std::fs;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::process::Signal;

use super::{
    catalog_files, database, fake_tool, files_in, plant_backup, quiet, spec, test_secrets,
};
use crate::config::{BackupDriver, BackupSource, BackupSpec};
use crate::engine::backup::test_support::MariaDb;
use crate::engine::backup::test_support::mariadb::PASSWORD_ENV;
use crate::engine::backup::tools::ToolFinder;
use crate::engine::backup::{BackupError, Catalog, Progress};

const SCHEMA: &str = r#"
CREATE TABLE authors (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(200) NOT NULL, born INT NULL);
CREATE TABLE `bücher` (
    id INT AUTO_INCREMENT PRIMARY KEY,
    author_id INT NOT NULL,
    `titel` VARCHAR(200) NULL,
    cover LONGBLOB NULL,
    price DECIMAL(8,2) NULL,
    FOREIGN KEY (author_id) REFERENCES authors(id)
);
CREATE TABLE audit (id INT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(300));
CREATE VIEW catalogue AS
    SELECT a.name, b.`titel` FROM authors a JOIN `bücher` b ON b.author_id = a.id;
CREATE TRIGGER book_added AFTER INSERT ON `bücher` FOR EACH ROW
    INSERT INTO audit (note) VALUES (CONCAT('added ', NEW.`titel`));
INSERT INTO authors (name, born) VALUES ('Фёдор Достоевский', 1821), ('魯迅', NULL), ('Zoë 🚀', 1990);
INSERT INTO `bücher` (author_id, `titel`, cover, price) VALUES
    (1, 'Преступление и наказание', REPEAT(UNHEX('00FF7F80'), 300000), 9.5),
    (2, '狂人日记', NULL, NULL),
    (3, NULL, UNHEX('00FF00'), 0);
"#;

/// Returns every table's definition and checksum, the readable columns,
/// the view and the trigger.
fn snapshot(server: &MariaDb, db: &str) -> Vec<String> {
    let tables = server.execute(db, "SHOW FULL TABLES WHERE Table_type = 'BASE TABLE'");
    let mut lines = Vec::new();
    for row in tables.lines() {
        let table = row.split('\t').next().unwrap();
        lines.push(server.execute(db, &format!("SHOW CREATE TABLE `{table}`")));
        lines.push(server.execute(db, &format!("CHECKSUM TABLE `{table}` EXTENDED")));
    }
    lines.push(server.execute(db, "SELECT id, name, born FROM authors ORDER BY id"));
    lines.push(server.execute(
        db,
        "SELECT id, `titel`, price, length(cover) FROM `bücher` ORDER BY id",
    ));
    lines.push(server.execute(db, "SELECT * FROM audit ORDER BY id"));
    lines.push(server.execute(
        db,
        &format!(
            "SELECT TABLE_NAME, VIEW_DEFINITION FROM information_schema.VIEWS \
             WHERE TABLE_SCHEMA = '{db}'"
        ),
    ));
    lines.push(server.execute(
        db,
        &format!(
            "SELECT TRIGGER_NAME, ACTION_STATEMENT FROM information_schema.TRIGGERS \
             WHERE TRIGGER_SCHEMA = '{db}'"
        ),
    ));
    lines
}

fn setup(server: &MariaDb) -> (tempfile::TempDir, String, BackupSpec, Catalog) {
    let db = server.create_database("my");
    server.execute(&db, SCHEMA);
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(BackupSource::Mysql(database(server.url(&db), PASSWORD_ENV)));
    let catalog = Catalog::open(dir.path(), "shop")
        .unwrap()
        .with_secrets(test_secrets);
    (dir, db, spec, catalog)
}

#[tokio::test]
async fn mysql_round_trip_restores_every_table() {
    let server = MariaDb::shared();
    let (_dir, db, spec, catalog) = setup(server);
    let original = snapshot(server, &db);
    let manifest = catalog.create(&spec, Some("c0ffee"), quiet).await.unwrap();

    server.execute(
        &db,
        "DELETE FROM audit; UPDATE authors SET name = 'x'; DROP VIEW catalogue; \
         INSERT INTO `bücher` (author_id, `titel`) VALUES (1, 'new');",
    );
    assert_ne!(snapshot(server, &db), original);
    catalog
        .restore(manifest.id.as_str(), &spec, quiet)
        .await
        .unwrap();

    assert_eq!(snapshot(server, &db), original);
    server.execute(
        &db,
        "INSERT INTO `bücher` (author_id, `titel`) VALUES (2, 'trigger check')",
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
            .contains("MariaDB")
    );
    assert!(
        manifest
            .server_version
            .as_deref()
            .unwrap()
            .contains("MariaDB")
    );
    assert_eq!(manifest.file, format!("{}.sql.zst", manifest.id));
}

#[tokio::test]
async fn mysql_failing_dump_leaves_catalog_empty() {
    let server = MariaDb::shared();
    let (_dir, db, spec, catalog) = setup(server);
    // A view over a dropped table makes mysqldump fail after it has
    // written the tables before it.
    server.execute(
        &db,
        "CREATE TABLE gone (a INT); CREATE VIEW zz_broken AS SELECT a FROM gone; DROP TABLE gone;",
    );

    let error = catalog.create(&spec, None, quiet).await.unwrap_err();

    match &error {
        BackupError::ToolFailed { tool, stderr, .. } => {
            assert_eq!(*tool, "mysqldump");
            assert!(stderr.contains("zz_broken"), "{stderr}");
        }
        other => panic!("expected mysqldump to fail, got {other}"),
    }
    assert_eq!(files_in(catalog.dir()), catalog_files(&[]));
}

#[tokio::test]
async fn mysql_server_killed_mid_dump() {
    let server = MariaDb::start().unwrap();
    let db = server.create_database("gone");
    server.execute(
        &db,
        "CREATE TABLE big (i INT PRIMARY KEY, v VARCHAR(64)); \
         INSERT INTO big SELECT seq, CONCAT(MD5(RAND()), MD5(RAND())) FROM seq_1_to_400000;",
    );
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::open(dir.path(), "gone")
        .unwrap()
        .with_secrets(test_secrets);
    let spec = spec(BackupSource::Mysql(database(server.url(&db), PASSWORD_ENV)));
    let killed = Arc::new(AtomicBool::new(false));
    let pid = server.process.pid;
    let on_progress = {
        let killed = Arc::clone(&killed);
        move |progress: Progress| {
            if matches!(progress, Progress::Bytes { .. }) && !killed.swap(true, Ordering::SeqCst) {
                let pid = rustix::process::Pid::from_raw(pid as i32).unwrap();
                rustix::process::kill_process(pid, Signal::KILL).unwrap();
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
                tool: "mysqldump",
                ..
            } | BackupError::IncompleteDump {
                tool: "mysqldump",
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(files_in(catalog.dir()), catalog_files(&[]));
}

#[tokio::test]
async fn mysql_failed_statement_fails_the_restore() {
    let server = MariaDb::shared();
    let (_dir, db, spec, catalog) = setup(server);
    let sql = "CREATE TABLE first_ok (id INT);\n\
               INSERT INTO missing_table VALUES (1);\n\
               CREATE TABLE never_created (id INT);\n\
               -- Dump completed on 2026-12-04 15:30:12\n";
    let manifest = plant_backup(
        &catalog,
        BackupDriver::Mysql,
        &zstd::encode_all(sql.as_bytes(), 3).unwrap(),
    );

    let error = catalog
        .restore(manifest.id.as_str(), &spec, quiet)
        .await
        .unwrap_err();

    match &error {
        BackupError::ToolFailed { tool, stderr, .. } => {
            assert_eq!(*tool, "mysql");
            assert!(
                stderr.lines().any(|line| line.starts_with("ERROR 1146")),
                "{stderr}"
            );
            assert!(
                error.to_string().starts_with("`mysql` failed: ERROR 1146"),
                "{error}"
            );
        }
        other => panic!("expected mysql to fail, got {other}"),
    }
    let tables = server.execute(&db, "SHOW TABLES LIKE 'never_created'");
    assert_eq!(tables, "");
}

#[tokio::test]
async fn mysql_incomplete_dump_is_rejected() {
    let server = MariaDb::shared();
    let (_dir, db, spec, catalog) = setup(server);
    let before = snapshot(server, &db);
    let sql = "DROP TABLE IF EXISTS authors;\nCREATE TABLE authors (id INT);\n";
    let manifest = plant_backup(
        &catalog,
        BackupDriver::Mysql,
        &zstd::encode_all(sql.as_bytes(), 3).unwrap(),
    );

    let error = catalog
        .restore(manifest.id.as_str(), &spec, quiet)
        .await
        .unwrap_err();

    assert_eq!(
        error.to_string(),
        format!(
            "backup `{}` cannot be read by `zstd`: the dump lacks the closing `-- Dump completed` line",
            manifest.id
        )
    );
    assert_eq!(snapshot(server, &db), before);
}

#[tokio::test]
async fn mysql_credentials_use_option_file() {
    let server = MariaDb::shared();
    let (dir, _db, spec, catalog) = setup(server);
    let tools = dir.path().join("tools");
    fs::create_dir(&tools).unwrap();
    let seen = dir.path().join("seen");
    fake_tool(
        &tools,
        "mariadb-dump",
        &format!(
            "if [ \"$1\" = --version ]; then echo 'mariadb-dump from 11.0.0-MariaDB'; exit 0; fi\n\
             echo \"$@\" > {seen}.args\n\
             file=${{1#--defaults-extra-file=}}\n\
             cat \"$file\" > {seen}.options\n\
             stat -c %a \"$file\" > {seen}.mode\n\
             echo \"${{MYSQL_PWD-unset}}\" > {seen}.env\n\
             printf -- '-- Server version\\t11.0.0-MariaDB\\n-- Dump completed on 2026\\n'",
            seen = seen.display()
        ),
    );
    let catalog = catalog.with_tools(ToolFinder::with_first(tools));

    let manifest = catalog.create(&spec, None, quiet).await.unwrap();

    let read = |suffix: &str| fs::read_to_string(format!("{}.{suffix}", seen.display())).unwrap();
    assert!(
        read("args").starts_with("--defaults-extra-file="),
        "{}",
        read("args")
    );
    assert!(!read("args").contains("p\"w"), "{}", read("args"));
    assert_eq!(
        read("options"),
        "[client]\nuser=\"rewind\"\npassword=\"p\\\"w\\\\ #1\"\n"
    );
    assert_eq!(read("mode"), "600\n");
    assert_eq!(read("env"), "unset\n");
    assert_eq!(manifest.server_version.as_deref(), Some("11.0.0-MariaDB"));
    assert_eq!(files_in(catalog.dir()), catalog_files(&[&manifest]));
}
