//! Tests of the backup engine against real SQLite files, folders, and
//! throwaway PostgreSQL and MariaDB servers, including damaged backups,
//! failing tools and full disks.

mod catalog;
mod directory;
mod mysql;
mod postgres;
mod sqlite;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::manifest::{BackupId, MANIFEST_FORMAT, Manifest};
use super::{Catalog, Progress};
use crate::config::{BackupDriver, BackupSource, BackupSpec, DatabaseSpec};

/// Returns a spec with the configuration's defaults and a 2-minute timeout.
pub(super) fn spec(source: BackupSource) -> BackupSpec {
    BackupSpec {
        source,
        keep: 10,
        max_age: None,
        timeout: Duration::from_secs(120),
    }
}

pub(super) fn database(url: reqwest::Url, password_env: &str) -> DatabaseSpec {
    DatabaseSpec {
        url,
        password_env: Some(password_env.to_owned()),
    }
}

/// Discards progress.
pub(super) fn quiet(_: Progress) {}

/// Collects progress reports.
#[derive(Clone, Default)]
pub(super) struct Recorder(pub(super) Arc<Mutex<Vec<Progress>>>);

impl Recorder {
    pub(super) fn callback(&self) -> impl Fn(Progress) + Send + Sync + 'static {
        let reports = Arc::clone(&self.0);
        move |progress| reports.lock().unwrap().push(progress)
    }

    pub(super) fn tool_lines(&self) -> Vec<String> {
        let reports = self.0.lock().unwrap();
        reports
            .iter()
            .filter_map(|report| match report {
                Progress::ToolOutput(line) => Some(line.clone()),
                Progress::Bytes { .. } => None,
            })
            .collect()
    }
}

/// Returns the sorted names of the files in `dir`.
pub(super) fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = match fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}

/// Returns the file names of a catalog holding exactly `ids`.
pub(super) fn catalog_files(ids: &[&Manifest]) -> Vec<String> {
    let mut names = vec![".lock".to_owned()];
    for manifest in ids {
        names.push(format!("{}.json", manifest.id));
        names.push(manifest.file.clone());
    }
    names.sort();
    names
}

/// Stores `data` in `catalog` as a complete backup with a correct hash,
/// the way a backup of `driver` would be stored.
pub(super) fn plant_backup(catalog: &Catalog, driver: BackupDriver, data: &[u8]) -> Manifest {
    fs::create_dir_all(catalog.dir()).unwrap();
    let id = BackupId::parse("20200101T000000Z-beef").unwrap();
    let manifest = Manifest {
        format: MANIFEST_FORMAT,
        service: catalog.service().to_owned(),
        driver,
        created_at: std::time::UNIX_EPOCH + Duration::from_secs(1_577_836_800),
        commit: None,
        file: Manifest::file_name(&id, driver),
        size: data.len() as u64,
        hash: blake3::hash(data).to_hex().to_string(),
        tool_version: None,
        server_version: None,
        duration: Duration::ZERO,
        pinned: false,
        id,
    };
    fs::write(catalog.data_path(&manifest), data).unwrap();
    let json = serde_json::to_vec(&manifest).unwrap();
    fs::write(catalog.dir().join(format!("{}.json", manifest.id)), json).unwrap();
    manifest
}

/// Rewrites the manifest of a backup with `change` applied.
pub(super) fn edit_manifest(catalog: &Catalog, id: &BackupId, change: impl FnOnce(&mut Manifest)) {
    let path = catalog.dir().join(format!("{id}.json"));
    let mut manifest: Manifest = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    change(&mut manifest);
    fs::write(path, serde_json::to_vec(&manifest).unwrap()).unwrap();
}

/// Flips one bit in the middle of `path`.
pub(super) fn flip_byte(path: &Path) {
    let mut bytes = fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    fs::write(path, bytes).unwrap();
}

/// Writes an executable shell script `name` into `dir`.
pub(super) fn fake_tool(dir: &Path, name: &str, script: &str) {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// A tmpfs of a few hundred KiB, mounted for a full-disk test and
/// unmounted when dropped. Mounting needs root, which CI has.
pub(super) struct SmallDisk {
    pub(super) path: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    pub(super) fn mount(size_kib: u32) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk");
        fs::create_dir(&path).unwrap();
        let output = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size_kib}k,mode=0755"),
                "tmpfs",
            ])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "full-disk tests mount a tmpfs, which needs root: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        SmallDisk { path, _dir: dir }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Returns the lookup the test catalogs use for passwords: the test
/// servers' passwords by their variable names, and nothing else.
pub(super) fn test_secrets(name: &str) -> Option<String> {
    use super::test_support::{mariadb, postgres};
    match name {
        postgres::PASSWORD_ENV => Some(postgres::PASSWORD.to_owned()),
        mariadb::PASSWORD_ENV => Some(mariadb::PASSWORD.to_owned()),
        _ => None,
    }
}
