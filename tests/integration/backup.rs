//! The backup commands against real SQLite files and folders: backup,
//! backups, restore, verify and pin, with retention, read-only mode and
//! damaged or invalid backups.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use predicates::prelude::*;
use serde_json::Value;

use crate::common::{Fixture, THREE_RELEASES, backup_table};

fn json(output: &[u8]) -> Value {
    serde_json::from_slice(output).expect("stdout is JSON")
}

/// A fixture whose `web` service keeps its data in `data/web.db`, with
/// rows `alpha` and `beta`.
fn sqlite_fixture(keys: &str) -> (Fixture, PathBuf) {
    let fixture = Fixture::new(
        THREE_RELEASES,
        &["true"],
        &backup_table("sqlite", "data/web.db", keys),
    );
    let database = fixture.dir.path().join("data/web.db");
    std::fs::create_dir_all(database.parent().unwrap()).unwrap();
    let connection = rusqlite::Connection::open(&database).unwrap();
    connection
        .execute_batch(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
             INSERT INTO items (name) VALUES ('alpha'), ('beta');",
        )
        .unwrap();
    (fixture, database)
}

fn item_names(database: &Path) -> Vec<String> {
    let connection = rusqlite::Connection::open(database).unwrap();
    let mut statement = connection
        .prepare("SELECT name FROM items ORDER BY id")
        .unwrap();
    statement
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn execute(database: &Path, sql: &str) {
    rusqlite::Connection::open(database)
        .unwrap()
        .execute_batch(sql)
        .unwrap();
}

/// Takes a backup of `web` and returns its id from `backup --json`.
fn take_backup(fixture: &Fixture) -> String {
    let output = fixture
        .rewind(&["backup", "web", "--json"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    json(&output)["backup"]["id"]
        .as_str()
        .expect("backup id")
        .to_owned()
}

fn backups(fixture: &Fixture) -> Vec<Value> {
    let output = fixture
        .rewind(&["backups", "web", "--json"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    json(&output)["backups"].as_array().unwrap().clone()
}

fn backup_ids(fixture: &Fixture) -> Vec<String> {
    backups(fixture)
        .iter()
        .map(|backup| backup["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Returns every file under `root` with its contents, by relative path.
fn folder_contents(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let relative = path.strip_prefix(root).unwrap().to_path_buf();
                files.insert(relative, std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

fn catalog_files(fixture: &Fixture) -> Vec<String> {
    let dir = fixture.state.join("backups/web");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn backup_prints_progress_and_id() {
    let (fixture, _) = sqlite_fixture("");

    let output = fixture
        .rewind(&["backup", "web"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(output).unwrap();
    let ids = backup_ids(&fixture);

    assert_eq!(ids.len(), 1);
    assert!(text.contains("backing up web (sqlite "), "{text}");
    assert!(text.contains("deployed at v1.2.0"), "{text}");
    assert!(text.contains(&format!("backup {} taken", ids[0])), "{text}");
}

#[test]
fn backups_json_has_documented_fields() {
    let (fixture, _) = sqlite_fixture("");
    let id = take_backup(&fixture);

    let output = fixture
        .rewind(&["backups", "web", "--json"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let listing = json(&output);
    let backup = &listing["backups"][0];
    let keys: Vec<&str> = backup
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let path = PathBuf::from(backup["path"].as_str().unwrap());
    let data = std::fs::read(&path).unwrap();
    let created_at = backup["created_at"].as_str().unwrap();

    assert_eq!(listing["service"], "web");
    assert_eq!(listing["backups"].as_array().unwrap().len(), 1);
    assert_eq!(
        keys,
        [
            "commit",
            "created_at",
            "driver",
            "duration_ms",
            "hash",
            "id",
            "path",
            "pinned",
            "server_version",
            "size",
            "tool_version",
            "version"
        ],
        "field names, sorted"
    );
    assert_eq!(backup["id"], id.as_str());
    assert_eq!(backup["driver"], "sqlite");
    assert!(humantime::parse_rfc3339(created_at).is_ok(), "{created_at}");
    assert_eq!(backup["commit"], fixture.commits[2].as_str());
    assert_eq!(backup["version"], "v1.2.0");
    assert_eq!(backup["size"], data.len() as u64);
    assert_eq!(backup["hash"], blake3::hash(&data).to_hex().as_str());
    assert!(path.is_absolute(), "{}", path.display());
    assert!(path.starts_with(&fixture.state), "{}", path.display());
    assert_eq!(backup["pinned"], false);
}

#[test]
fn backups_table_lists_newest_first() {
    let (fixture, _) = sqlite_fixture("");
    let older = take_backup(&fixture);
    let newer = take_backup(&fixture);

    let output = fixture
        .rewind(&["backups", "web"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(output).unwrap();
    let lines: Vec<&str> = text.lines().collect();

    assert!(lines[0].starts_with("web: 2 backups in `"), "{text}");
    assert!(lines[1].starts_with("ID"), "{text}");
    assert!(lines[1].contains("VERSION"), "{text}");
    assert!(lines[2].starts_with(&newer), "{text}");
    assert!(lines[3].starts_with(&older), "{text}");
    assert!(lines[2].contains("v1.2.0"), "{text}");
    assert!(lines[2].contains("sqlite"), "{text}");
    assert!(lines[2].contains(" KiB"), "{text}");
}

#[test]
fn restore_puts_sqlite_data_back() {
    let (fixture, database) = sqlite_fixture("");
    let id = take_backup(&fixture);
    execute(
        &database,
        "DELETE FROM items WHERE name = 'alpha'; INSERT INTO items (name) VALUES ('gamma');",
    );

    let output = fixture
        .rewind(&["restore", "web", &id, "--yes"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(output).unwrap();
    let listed = backups(&fixture);
    let safety = PathBuf::from(listed[0]["path"].as_str().unwrap());

    assert_eq!(item_names(&database), ["alpha", "beta"]);
    assert!(text.contains("data written after"), "{text}");
    assert!(text.contains("safety backup"), "{text}");
    assert!(text.contains("done: the data of web is restored"), "{text}");
    assert_eq!(listed.len(), 2, "the safety backup is listed");
    assert_ne!(listed[0]["id"], id.as_str());
    assert_eq!(item_names(&safety), ["beta", "gamma"]);
}

#[test]
fn restore_is_audited_and_undone() {
    let (fixture, database) = sqlite_fixture("");
    // The undo restarts the service and checks its health, which the
    // newest release fails.
    fixture
        .rewind(&["rollback", "web", "--to", "v1.1.0", "--yes"])
        .assert()
        .code(0);
    let id = take_backup(&fixture);
    execute(&database, "INSERT INTO items (name) VALUES ('gamma');");

    fixture
        .rewind(&["restore", "web", &id, "--yes", "--reason", "bad import"])
        .assert()
        .code(0);
    assert_eq!(item_names(&database), ["alpha", "beta"]);
    let output = fixture
        .rewind(&["history", "--json"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let runs = json(&output);
    let run = &runs["runs"][0];
    let safety = backup_ids(&fixture)[0].clone();

    assert_eq!(run["kind"], "restore");
    assert_eq!(run["service"], "web");
    assert_eq!(run["reason"], "bad import");
    assert_eq!(run["outcome"]["result"], "succeeded");
    assert_eq!(run["safety_backup"], safety.as_str());
    assert_eq!(run["backups"], serde_json::json!([safety, id]));
    assert_eq!(run["from"]["commit"], run["to"]["commit"]);

    fixture.rewind(&["undo", "web", "--yes"]).assert().code(0);

    assert_eq!(item_names(&database), ["alpha", "beta", "gamma"]);
}

#[test]
fn restore_puts_folder_back() {
    let fixture = Fixture::new(
        THREE_RELEASES,
        &["true"],
        &backup_table("directory", "files", ""),
    );
    let folder = fixture.dir.path().join("files");
    std::fs::create_dir_all(folder.join("nested")).unwrap();
    std::fs::write(folder.join("a.txt"), "first").unwrap();
    std::fs::write(folder.join("nested/b.bin"), [0u8, 1, 2, 255]).unwrap();
    let original = folder_contents(&folder);
    let id = take_backup(&fixture);
    std::fs::write(folder.join("a.txt"), "changed").unwrap();
    std::fs::remove_file(folder.join("nested/b.bin")).unwrap();
    std::fs::write(folder.join("new.txt"), "written after the backup").unwrap();

    fixture
        .rewind(&["restore", "web", &id, "--yes"])
        .assert()
        .code(0);

    assert_eq!(folder_contents(&folder), original);
}

#[test]
fn restore_without_yes_needs_terminal() {
    let (fixture, database) = sqlite_fixture("");
    let id = take_backup(&fixture);
    execute(&database, "INSERT INTO items (name) VALUES ('gamma');");

    fixture
        .rewind(&["restore", "web", &id])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("needs confirmation"));

    assert_eq!(item_names(&database), ["alpha", "beta", "gamma"]);
    assert_eq!(backup_ids(&fixture), [id]);
}

#[test]
fn failed_restore_puts_safety_backup_back() {
    // The live database is in WAL mode, so a reader can take the safety
    // backup while this test holds the write lock, and the restore, which
    // must write, fails after `timeout`.
    let (fixture, database) = sqlite_fixture("timeout = \"2s\"\n");
    let id = take_backup(&fixture);
    let writer = rusqlite::Connection::open(&database).unwrap();
    writer
        .query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
        .unwrap();
    writer
        .execute_batch("INSERT INTO items (name) VALUES ('gamma'); BEGIN IMMEDIATE;")
        .unwrap();

    let mut child = Command::new(assert_cmd::cargo::cargo_bin("rewind"))
        .arg("--config")
        .arg(&fixture.config)
        .args(["restore", "web", &id, "--yes"])
        .env("XDG_STATE_HOME", fixture.dir.path().join("xdg-state"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut text = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        text.push_str(&line);
        text.push('\n');
        if line.contains("restore FAILED") {
            break;
        }
    }
    // Releasing the write lock lets the safety backup go back.
    writer.execute_batch("COMMIT;").unwrap();
    drop(writer);
    for line in lines {
        text.push_str(&line.unwrap());
        text.push('\n');
    }
    let status = child.wait().unwrap();

    assert_eq!(status.code(), Some(1), "{text}");
    assert!(text.contains("restore FAILED"), "{text}");
    assert!(text.contains("stayed locked"), "{text}");
    assert!(text.contains("revert ok"), "{text}");
    assert!(text.contains("reverted: the data of web is back"), "{text}");
    assert_eq!(item_names(&database), ["alpha", "beta", "gamma"]);
}

#[test]
fn verify_names_file_with_flipped_byte() {
    let (fixture, _) = sqlite_fixture("");
    let intact = take_backup(&fixture);
    let damaged = take_backup(&fixture);
    let path = PathBuf::from(backups(&fixture)[0]["path"].as_str().unwrap());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[100] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();

    for args in [vec!["verify"], vec!["verify", "web"]] {
        let output = fixture.rewind(&args).assert().code(1).get_output().clone();
        let stdout = String::from_utf8(output.stdout).unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        let damaged_line = stdout
            .lines()
            .find(|line| line.contains(&damaged))
            .unwrap_or_default();
        let intact_line = stdout
            .lines()
            .find(|line| line.contains(&intact))
            .unwrap_or_default();

        assert!(damaged_line.starts_with("DAMAGED"), "{stdout}");
        assert!(damaged_line.contains("BLAKE3 hash"), "{stdout}");
        assert!(intact_line.starts_with("ok"), "{stdout}");
        assert!(
            stdout.contains(&format!("damaged files:\n  web  {}\n", path.display())),
            "{stdout}"
        );
        assert!(stderr.contains("error: 1 backup damaged"), "{stderr}");
    }
}

#[test]
fn verify_passes_intact_backups() {
    let (fixture, _) = sqlite_fixture("");
    take_backup(&fixture);

    fixture
        .rewind(&["verify"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "verified 1 backup of 1 service: 1 intact, 0 damaged",
        ));
}

#[test]
fn verify_reports_damaged_manifest() {
    let (fixture, _) = sqlite_fixture("");
    let id = take_backup(&fixture);
    let manifest = fixture.state.join(format!("backups/web/{id}.json"));
    std::fs::write(&manifest, "{ not json").unwrap();

    fixture
        .rewind(&["verify", "web"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(format!(
            "  web  {}\n",
            manifest.display()
        )));
}

#[test]
fn restore_refuses_flipped_byte() {
    let (fixture, database) = sqlite_fixture("");
    let id = take_backup(&fixture);
    let path = PathBuf::from(backups(&fixture)[0]["path"].as_str().unwrap());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[100] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();
    execute(&database, "INSERT INTO items (name) VALUES ('gamma');");
    let files_before = catalog_files(&fixture);

    fixture
        .rewind(&["restore", "web", &id, "--yes"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("is damaged"))
        .stderr(predicate::str::contains("nothing was changed"));

    assert_eq!(item_names(&database), ["alpha", "beta", "gamma"]);
    assert_eq!(catalog_files(&fixture), files_before);
}

#[test]
fn restore_refuses_unreadable_dump() {
    let (fixture, database) = sqlite_fixture("");
    let id = take_backup(&fixture);
    // A file that is not a database, with a manifest that matches it.
    let path = PathBuf::from(backups(&fixture)[0]["path"].as_str().unwrap());
    let garbage = vec![b'x'; 4096];
    std::fs::write(&path, &garbage).unwrap();
    let manifest_path = fixture.state.join(format!("backups/web/{id}.json"));
    let mut manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    manifest["size"] = Value::from(garbage.len());
    manifest["hash"] = Value::from(blake3::hash(&garbage).to_hex().to_string());
    std::fs::write(&manifest_path, manifest.to_string()).unwrap();
    let files_before = catalog_files(&fixture);

    fixture
        .rewind(&["restore", "web", &id, "--yes"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("cannot be read by `sqlite`"));

    assert_eq!(item_names(&database), ["alpha", "beta"]);
    assert_eq!(catalog_files(&fixture), files_before);
}

#[test]
fn path_in_backup_id_is_rejected() {
    let (fixture, database) = sqlite_fixture("");
    take_backup(&fixture);
    let files_before = catalog_files(&fixture);

    for args in [
        vec!["restore", "web", "../x", "--yes"],
        vec!["pin", "web", "../x"],
    ] {
        fixture
            .rewind(&args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains("invalid backup id `../x`"))
            .stderr(predicate::str::contains("hint: backup ids look like"));
    }

    assert_eq!(item_names(&database), ["alpha", "beta"]);
    assert_eq!(catalog_files(&fixture), files_before);
}

#[test]
fn unknown_backup_id_is_refused() {
    let (fixture, _) = sqlite_fixture("");

    fixture
        .rewind(&["restore", "web", "20200101T000000Z-abcd", "--yes"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains(
            "no backup `20200101T000000Z-abcd` of service `web`",
        ))
        .stderr(predicate::str::contains("rewind backups web"));
}

#[test]
fn service_without_backup_table_exits_2() {
    let fixture = Fixture::new(THREE_RELEASES, &["true"], "");

    for args in [
        vec!["backup", "web"],
        vec!["backups", "web"],
        vec!["restore", "web", "20200101T000000Z-abcd", "--yes"],
        vec!["verify", "web"],
        vec!["pin", "web", "20200101T000000Z-abcd"],
    ] {
        fixture
            .rewind(&args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(
                "error: service `web` has no backup table",
            ))
            .stderr(predicate::str::contains(
                "hint: add a `[services.web.backup]` table",
            ));
    }
    assert!(!fixture.state.join("backups").exists());
}

#[test]
fn verify_without_backup_tables_succeeds() {
    let fixture = Fixture::new(THREE_RELEASES, &["true"], "");

    fixture
        .rewind(&["verify"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("nothing to verify"));
}

#[test]
fn read_only_refuses_backup_and_restore() {
    let (fixture, database) = sqlite_fixture("");
    let id = take_backup(&fixture);
    execute(&database, "INSERT INTO items (name) VALUES ('gamma');");
    let files_before = catalog_files(&fixture);

    for args in [
        vec!["--read-only", "backup", "web"],
        vec!["--read-only", "restore", "web", &id, "--yes"],
        vec!["--read-only", "pin", "web", &id],
    ] {
        fixture
            .rewind(&args)
            .assert()
            .code(3)
            .stderr(predicate::str::contains("read-only mode"));
    }

    assert_eq!(item_names(&database), ["alpha", "beta", "gamma"]);
    assert_eq!(catalog_files(&fixture), files_before);
}

#[test]
fn pruning_keeps_newest_and_pinned() {
    let (fixture, _) = sqlite_fixture("keep = 2\n");
    let first = take_backup(&fixture);
    fixture.rewind(&["pin", "web", &first]).assert().code(0);
    let ids: Vec<String> = (0..4).map(|_| take_backup(&fixture)).collect();

    let listed = backups(&fixture);
    let listed_ids: Vec<&str> = listed
        .iter()
        .map(|backup| backup["id"].as_str().unwrap())
        .collect();

    assert_eq!(listed_ids, [&ids[3], &ids[2], &first]);
    assert_eq!(listed[2]["pinned"], true);
    assert!(
        !catalog_files(&fixture)
            .iter()
            .any(|name| name.starts_with(&ids[0]))
    );
}

#[test]
fn unpinned_backup_is_pruned_again() {
    let (fixture, _) = sqlite_fixture("keep = 1\n");
    let first = take_backup(&fixture);
    fixture.rewind(&["pin", "web", &first]).assert().code(0);
    take_backup(&fixture);
    fixture
        .rewind(&["pin", "web", &first, "--unpin"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("unpinned backup"));

    let newest = take_backup(&fixture);

    assert_eq!(backup_ids(&fixture), [newest]);
}
