//! Catalog bookkeeping with the `sqlite` driver: manifests, files and
//! modes, damaged backups, unsafe ids, retention and a full disk.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use rusqlite::Connection;

use super::sqlite::{make_database, snapshot};
use super::{SmallDisk, catalog_files, edit_manifest, files_in, flip_byte, quiet, spec};
use crate::config::{BackupDriver, BackupSource, BackupSpec};
use crate::engine::backup::{BackupError, BackupId, Catalog, Manifest};

fn sqlite_spec(path: &Path) -> BackupSpec {
    spec(BackupSource::Sqlite {
        path: path.to_path_buf(),
    })
}

/// Creates a live database with data and a catalog of service `orders`.
fn setup() -> (tempfile::TempDir, Catalog, BackupSpec) {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("app.db");
    make_database(&live);
    let catalog = Catalog::open(&dir.path().join("state"), "orders").unwrap();
    (dir, catalog, sqlite_spec(&live))
}

fn live_path(spec: &BackupSpec) -> &Path {
    match &spec.source {
        BackupSource::Sqlite { path } => path,
        _ => unreachable!("the catalog tests use sqlite"),
    }
}

/// Changes the live database so a restore would be visible.
fn change_live(spec: &BackupSpec) -> Vec<String> {
    let connection = Connection::open(live_path(spec)).unwrap();
    connection
        .execute("UPDATE authors SET name = 'changed'", [])
        .unwrap();
    drop(connection);
    snapshot(live_path(spec))
}

#[tokio::test]
async fn create_writes_private_files() {
    let (dir, catalog, spec) = setup();
    let manifest = catalog.create(&spec, Some("abc123"), quiet).await.unwrap();
    let data = catalog.data_path(&manifest);
    let bytes = fs::read(&data).unwrap();
    let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;

    assert_eq!(catalog.dir(), dir.path().join("state/backups/orders"));
    assert_eq!(manifest.service, "orders");
    assert_eq!(manifest.driver, BackupDriver::Sqlite);
    assert_eq!(manifest.file, format!("{}.sqlite", manifest.id));
    assert_eq!(manifest.size, bytes.len() as u64);
    assert_eq!(manifest.hash, blake3::hash(&bytes).to_hex().to_string());
    assert!(!manifest.pinned);
    assert_eq!(mode(&data), 0o600);
    assert_eq!(
        mode(&catalog.dir().join(format!("{}.json", manifest.id))),
        0o600
    );
    assert_eq!(mode(catalog.dir()), 0o700);
    assert_eq!(files_in(catalog.dir()), catalog_files(&[&manifest]));
    assert_eq!(catalog.list().unwrap(), std::slice::from_ref(&manifest));
    assert_eq!(catalog.get(manifest.id.as_str()).unwrap(), manifest);
    catalog.verify(manifest.id.as_str()).await.unwrap();
}

#[tokio::test]
async fn list_is_newest_first() {
    let (_dir, catalog, spec) = setup();
    let mut taken = Vec::new();
    for _ in 0..3 {
        taken.push(catalog.create(&spec, None, quiet).await.unwrap().id);
    }
    let listed: Vec<BackupId> = catalog.list().unwrap().into_iter().map(|m| m.id).collect();
    taken.reverse();

    assert_eq!(listed, taken);
}

#[tokio::test]
async fn unfinished_files_are_ignored_then_pruned() {
    let (_dir, catalog, spec) = setup();
    let manifest = catalog.create(&spec, None, quiet).await.unwrap();
    fs::write(catalog.dir().join("20200101T000000Z-dead.sqlite"), b"half").unwrap();
    fs::write(catalog.dir().join(".tmp-crashed"), b"half").unwrap();
    fs::write(catalog.dir().join("notes.txt"), b"kept").unwrap();

    assert_eq!(catalog.list().unwrap(), std::slice::from_ref(&manifest));
    let removed = catalog.prune(10, &[] as &[&str]).await.unwrap();

    assert!(removed.is_empty());
    let mut expected = catalog_files(&[&manifest]);
    expected.push("notes.txt".to_owned());
    expected.sort();
    assert_eq!(files_in(catalog.dir()), expected);
}

#[tokio::test]
async fn flipped_byte_is_rejected() {
    let (_dir, catalog, spec) = setup();
    let manifest = catalog.create(&spec, None, quiet).await.unwrap();
    let live = change_live(&spec);
    flip_byte(&catalog.data_path(&manifest));
    let actual = blake3::hash(&fs::read(catalog.data_path(&manifest)).unwrap())
        .to_hex()
        .to_string();

    let verified = catalog.verify(manifest.id.as_str()).await.unwrap_err();
    let restored = catalog
        .restore(manifest.id.as_str(), &spec, quiet)
        .await
        .unwrap_err();

    for error in [verified, restored] {
        match &error {
            BackupError::HashMismatch {
                id,
                expected,
                actual: found,
            } => {
                assert_eq!(id, manifest.id.as_str());
                assert_eq!(expected, &manifest.hash);
                assert_eq!(found, &actual);
            }
            other => panic!("expected a hash mismatch, got {other}"),
        }
        assert!(error.hint().unwrap().contains("was not restored"));
    }
    assert_eq!(snapshot(live_path(&spec)), live);
    assert_eq!(files_in(catalog.dir()), catalog_files(&[&manifest]));
}

#[tokio::test]
async fn check_restore_changes_nothing() {
    let (_dir, catalog, spec) = setup();
    let manifest = catalog.create(&spec, None, quiet).await.unwrap();
    let live = change_live(&spec);

    let checked = catalog
        .check_restore(manifest.id.as_str(), &spec, quiet)
        .await
        .unwrap();
    flip_byte(&catalog.data_path(&manifest));
    let error = catalog
        .check_restore(manifest.id.as_str(), &spec, quiet)
        .await
        .unwrap_err();

    assert_eq!(checked, manifest);
    assert!(
        matches!(error, BackupError::HashMismatch { .. }),
        "expected a hash mismatch, got {error}"
    );
    assert_eq!(snapshot(live_path(&spec)), live);
    assert_eq!(files_in(catalog.dir()), catalog_files(&[&manifest]));
}

#[tokio::test]
async fn truncated_backup_is_rejected() {
    let (_dir, catalog, spec) = setup();
    let manifest = catalog.create(&spec, None, quiet).await.unwrap();
    let live = change_live(&spec);
    let data = catalog.data_path(&manifest);
    let bytes = fs::read(&data).unwrap();
    fs::write(&data, &bytes[..bytes.len() / 2]).unwrap();

    let error = catalog
        .restore(manifest.id.as_str(), &spec, quiet)
        .await
        .unwrap_err();

    assert_eq!(
        error.to_string(),
        format!(
            "backup `{}` has the wrong size: `{}` holds {} bytes, the manifest records {}",
            manifest.id,
            data.display(),
            bytes.len() / 2,
            bytes.len()
        )
    );
    assert_eq!(snapshot(live_path(&spec)), live);
}

#[tokio::test]
async fn missing_data_file_is_rejected() {
    let (_dir, catalog, spec) = setup();
    let manifest = catalog.create(&spec, None, quiet).await.unwrap();
    let live = change_live(&spec);
    fs::remove_file(catalog.data_path(&manifest)).unwrap();

    let error = catalog
        .restore(manifest.id.as_str(), &spec, quiet)
        .await
        .unwrap_err();

    assert!(
        matches!(&error, BackupError::DataMissing { id, .. } if id == manifest.id.as_str()),
        "{error}"
    );
    assert_eq!(snapshot(live_path(&spec)), live);
}

#[tokio::test]
async fn traversal_ids_are_rejected() {
    let (dir, catalog, spec) = setup();
    catalog.create(&spec, None, quiet).await.unwrap();
    fs::write(dir.path().join("state/backups/secret.json"), b"{}").unwrap();
    let ids = ["../secret", "../../etc/passwd", "..", "a/b", "", "x.json"];

    for id in ids {
        let errors = [
            catalog.get(id).unwrap_err(),
            catalog.verify(id).await.unwrap_err(),
            catalog.restore(id, &spec, quiet).await.unwrap_err(),
            catalog.pin(id, true).await.unwrap_err(),
        ];
        for error in errors {
            assert!(
                matches!(&error, BackupError::InvalidId { id: shown } if shown == id),
                "{id}: {error}"
            );
        }
    }
    assert!(matches!(
        Catalog::open(dir.path(), "../x").unwrap_err(),
        BackupError::InvalidService { .. }
    ));
}

#[tokio::test]
async fn unknown_id_is_not_found() {
    let (_dir, catalog, _spec) = setup();
    let error = catalog.get("20200101T000000Z-0000").unwrap_err();

    assert_eq!(
        error.to_string(),
        "no backup `20200101T000000Z-0000` of service `orders`"
    );
    assert_eq!(
        error.hint().unwrap(),
        "run `rewind backups orders` to list the backups"
    );
}

#[tokio::test]
async fn damaged_manifests_are_left_out() {
    let (_dir, catalog, spec) = setup();
    let good = catalog.create(&spec, None, quiet).await.unwrap();
    let other = catalog.create(&spec, None, quiet).await.unwrap();
    let garbled = catalog.create(&spec, None, quiet).await.unwrap();
    edit_manifest(&catalog, &other.id, |m| m.service = "billing".to_owned());
    fs::write(
        catalog.dir().join(format!("{}.json", garbled.id)),
        b"{\"format\":",
    )
    .unwrap();

    assert_eq!(catalog.list().unwrap(), [good]);
    let error = catalog.get(other.id.as_str()).unwrap_err();
    assert!(
        error
            .to_string()
            .ends_with("is damaged: it names service `billing`"),
        "{error}"
    );
    let error = catalog.get(garbled.id.as_str()).unwrap_err();
    assert!(
        matches!(error, BackupError::DamagedManifest { .. }),
        "{error}"
    );
    // Retention leaves the files of damaged manifests alone.
    catalog.prune(1, &[] as &[&str]).await.unwrap();
    assert!(catalog.data_path(&other).exists());
    assert!(catalog.data_path(&garbled).exists());
}

#[tokio::test]
async fn driver_mismatch_is_rejected() {
    let (dir, catalog, spec) = setup();
    let manifest = catalog.create(&spec, None, quiet).await.unwrap();
    let folder = super::spec(BackupSource::Directory {
        path: dir.path().join("folder"),
    });

    let error = catalog
        .restore(manifest.id.as_str(), &folder, quiet)
        .await
        .unwrap_err();

    assert_eq!(
        error.to_string(),
        format!(
            "backup `{}` was taken by the `sqlite` driver, but the service uses `directory`",
            manifest.id
        )
    );
    assert!(!dir.path().join("folder").exists());
}

#[tokio::test]
async fn prune_keeps_newest_pinned_and_protected() {
    let (_dir, catalog, spec) = setup();
    let mut ids = Vec::new();
    for _ in 0..6 {
        ids.push(catalog.create(&spec, None, quiet).await.unwrap().id);
    }
    // Oldest first: 0 is pinned, 1 is protected, 5 is the newest.
    let pinned = catalog.pin(ids[0].as_str(), true).await.unwrap();
    assert!(pinned.pinned);
    assert!(catalog.get(ids[0].as_str()).unwrap().pinned);

    let removed = catalog.prune(2, &[ids[1].as_str()]).await.unwrap();

    assert_eq!(removed, [ids[3].clone(), ids[2].clone()]);
    let left: Vec<BackupId> = catalog.list().unwrap().into_iter().map(|m| m.id).collect();
    assert_eq!(
        left,
        [
            ids[5].clone(),
            ids[4].clone(),
            ids[1].clone(),
            ids[0].clone()
        ]
    );
}

#[tokio::test]
async fn prune_never_removes_the_newest() {
    let (_dir, catalog, spec) = setup();
    let older = catalog.create(&spec, None, quiet).await.unwrap();
    let newest = catalog.create(&spec, None, quiet).await.unwrap();

    let removed = catalog.prune(0, &[] as &[&str]).await.unwrap();

    assert_eq!(removed, std::slice::from_ref(&older.id));
    assert_eq!(catalog.list().unwrap(), std::slice::from_ref(&newest));
    assert_eq!(files_in(catalog.dir()), catalog_files(&[&newest]));
}

#[tokio::test]
async fn unpinned_backup_is_pruned_again() {
    let (_dir, catalog, spec) = setup();
    let older = catalog.create(&spec, None, quiet).await.unwrap();
    catalog.create(&spec, None, quiet).await.unwrap();
    catalog.pin(older.id.as_str(), true).await.unwrap();
    assert!(catalog.prune(1, &[] as &[&str]).await.unwrap().is_empty());

    catalog.pin(older.id.as_str(), false).await.unwrap();

    assert_eq!(catalog.prune(1, &[] as &[&str]).await.unwrap(), [older.id]);
}

#[tokio::test]
async fn full_disk_leaves_catalog_as_it_was() {
    let disk = SmallDisk::mount(512);
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("app.db");
    let connection = Connection::open(&live).unwrap();
    connection
        .execute_batch("CREATE TABLE t (v BLOB); INSERT INTO t VALUES (zeroblob(1000));")
        .unwrap();
    let catalog = Catalog::open(&disk.path, "orders").unwrap();
    let spec = sqlite_spec(&live);
    let first = catalog.create(&spec, None, quiet).await.unwrap();
    connection
        .execute("INSERT INTO t VALUES (randomblob(2000000))", [])
        .unwrap();
    drop(connection);

    let error = catalog.create(&spec, None, quiet).await.unwrap_err();

    assert!(
        error.hint().unwrap().starts_with("free space"),
        "{error}: {:?}",
        error.hint()
    );
    assert_eq!(catalog.list().unwrap(), std::slice::from_ref(&first));
    assert_eq!(files_in(catalog.dir()), catalog_files(&[&first]));
    catalog.verify(first.id.as_str()).await.unwrap();
}

#[tokio::test]
async fn manifest_lists_the_recorded_fields() {
    let (_dir, catalog, spec) = setup();
    let manifest = catalog.create(&spec, Some("0123abc"), quiet).await.unwrap();
    let json: serde_json::Value = serde_json::from_slice(
        &fs::read(catalog.dir().join(format!("{}.json", manifest.id))).unwrap(),
    )
    .unwrap();
    let mut keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();

    assert_eq!(
        keys,
        [
            "commit",
            "created_at",
            "driver",
            "duration_ms",
            "file",
            "format",
            "hash",
            "id",
            "pinned",
            "server_version",
            "service",
            "size",
            "tool_version"
        ]
    );
    assert_eq!(json["commit"], "0123abc");
    assert_eq!(
        Manifest::file_name(&manifest.id, BackupDriver::Sqlite),
        json["file"].as_str().unwrap()
    );
}
