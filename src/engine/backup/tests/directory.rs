//! The `directory` driver: round trips of a folder tree, archives whose
//! entries try to leave the target, and a full disk during a restore.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;

use tar::{EntryType, Header};

use super::{SmallDisk, catalog_files, files_in, plant_backup, quiet, spec};
use crate::config::{BackupDriver, BackupSource, BackupSpec};
use crate::engine::backup::{BackupError, Catalog};

fn folder_spec(path: &Path) -> BackupSpec {
    spec(BackupSource::Directory {
        path: path.to_path_buf(),
    })
}

fn pseudo_random(len: usize, seed: u32) -> Vec<u8> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect()
}

/// Builds a tree with nested folders, non-ASCII names, modes, an empty
/// folder, symbolic links inside the tree and a 3 MB file.
fn make_tree(root: &Path) {
    let mode = |path: &Path, mode: u32| {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap()
    };
    fs::create_dir_all(root.join("bin")).unwrap();
    fs::create_dir_all(root.join("data/empty")).unwrap();
    fs::write(root.join("config.toml"), "port = 8080\n").unwrap();
    mode(&root.join("config.toml"), 0o640);
    fs::write(root.join("bin/run.sh"), "#!/bin/sh\nexec app\n").unwrap();
    mode(&root.join("bin/run.sh"), 0o755);
    fs::write(root.join("data/äöü-日本.txt"), "grüße\n").unwrap();
    fs::write(root.join("data/big.bin"), pseudo_random(3_000_000, 7)).unwrap();
    mode(&root.join("data/empty"), 0o700);
    symlink("data", root.join("current")).unwrap();
    symlink("../config.toml", root.join("data/config-link")).unwrap();
    mode(root, 0o750);
}

/// Returns one line per entry: path, kind, mode, and contents hash, link
/// target or modification time.
fn tree(root: &Path) -> Vec<String> {
    fn walk(root: &Path, relative: &Path, lines: &mut Vec<String>) {
        let path = root.join(relative);
        let metadata = fs::symlink_metadata(&path).unwrap();
        let mode = metadata.mode() & 0o7777;
        let shown = relative.display();
        if metadata.file_type().is_symlink() {
            lines.push(format!(
                "{shown} link -> {}",
                fs::read_link(&path).unwrap().display()
            ));
        } else if metadata.is_dir() {
            lines.push(format!("{shown} dir {mode:o}"));
            let mut names: Vec<_> = fs::read_dir(&path)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            names.sort();
            for name in names {
                walk(root, &relative.join(name), lines);
            }
        } else {
            let hash = blake3::hash(&fs::read(&path).unwrap()).to_hex();
            lines.push(format!(
                "{shown} file {mode:o} {} {}",
                &hash[..16],
                metadata.mtime()
            ));
        }
    }
    let mut lines = Vec::new();
    walk(root, Path::new(""), &mut lines);
    lines
}

#[tokio::test]
async fn directory_round_trip_restores_the_tree() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live");
    make_tree(&live);
    let original = tree(&live);
    let catalog = Catalog::open(&dir.path().join("state"), "files").unwrap();
    let spec = folder_spec(&live);
    let manifest = catalog.create(&spec, None, quiet).await.unwrap();

    fs::remove_file(live.join("data/big.bin")).unwrap();
    fs::write(live.join("config.toml"), "port = 1\n").unwrap();
    fs::write(live.join("stray.txt"), "new").unwrap();
    fs::set_permissions(live.join("bin/run.sh"), fs::Permissions::from_mode(0o600)).unwrap();
    catalog
        .restore(manifest.id.as_str(), &spec, quiet)
        .await
        .unwrap();

    assert_eq!(tree(&live), original);
    assert_eq!(files_in(dir.path()), ["live", "state"]);
    assert_eq!(manifest.file, format!("{}.tar.zst", manifest.id));
    assert!(manifest.size < 3_300_000, "size {}", manifest.size);
}

#[tokio::test]
async fn directory_restore_recreates_folder() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live");
    make_tree(&live);
    let original = tree(&live);
    let catalog = Catalog::open(&dir.path().join("state"), "files").unwrap();
    let spec = folder_spec(&live);
    let manifest = catalog.create(&spec, None, quiet).await.unwrap();
    fs::remove_dir_all(&live).unwrap();

    catalog
        .restore(manifest.id.as_str(), &spec, quiet)
        .await
        .unwrap();

    assert_eq!(tree(&live), original);
}

#[tokio::test]
async fn damaged_archive_keeps_live_folder() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live");
    make_tree(&live);
    let catalog = Catalog::open(&dir.path().join("state"), "files").unwrap();
    let spec = folder_spec(&live);
    let manifest = catalog.create(&spec, None, quiet).await.unwrap();
    fs::write(live.join("stray.txt"), "written after the backup").unwrap();
    let before = tree(&live);
    let data = catalog.data_path(&manifest);
    let intact = fs::read(&data).unwrap();

    // One byte in the middle, which breaks decompression, and the last
    // byte, which follows the last tar entry.
    for position in [intact.len() / 2, intact.len() - 1] {
        let mut damaged = intact.clone();
        damaged[position] ^= 0x55;
        fs::write(&data, &damaged).unwrap();

        let error = catalog
            .restore(manifest.id.as_str(), &spec, quiet)
            .await
            .unwrap_err();

        assert!(
            matches!(error, BackupError::HashMismatch { .. }),
            "byte {position}: {error:?}"
        );
        assert_eq!(tree(&live), before, "byte {position}");
        assert_eq!(files_in(dir.path()), ["live", "state"], "byte {position}");
    }
}

/// An archive entry: name, type, link target and contents.
type RawEntry<'a> = (&'a str, EntryType, &'a str, &'a [u8]);

/// Returns a zstd-compressed tar archive with raw entry names, which the
/// tar crate's checked setters would refuse.
fn raw_archive(entries: &[RawEntry]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, kind, link, data) in entries {
        let mut header = Header::new_gnu();
        let gnu = header.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
        header.set_entry_type(*kind);
        header.set_size(data.len() as u64);
        header.set_mode(if *kind == EntryType::Directory {
            0o755
        } else {
            0o644
        });
        header.set_cksum();
        builder.append(&header, *data).unwrap();
    }
    zstd::encode_all(&builder.into_inner().unwrap()[..], 3).unwrap()
}

#[tokio::test]
async fn unsafe_archive_entries_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside.txt");
    let absolute = format!("{}", outside.display());
    let cases: Vec<(&str, Vec<RawEntry>, &str)> = vec![
        (
            "dotdot",
            vec![("../outside.txt", EntryType::Regular, "", b"x")],
            "path leaves the folder",
        ),
        (
            "absolute",
            vec![(absolute.as_str(), EntryType::Regular, "", b"x")],
            "path leaves the folder",
        ),
        (
            "through-link",
            vec![
                ("sub", EntryType::Directory, "", b""),
                ("link", EntryType::Symlink, "sub", b""),
                ("link/evil.txt", EntryType::Regular, "", b"x"),
            ],
            "path goes through a symbolic link",
        ),
        (
            "link-out",
            vec![("out", EntryType::Symlink, "../../outside.txt", b"")],
            "symbolic link points outside the folder",
        ),
        (
            "hard-link-out",
            vec![("h", EntryType::Link, "../outside.txt", b"")],
            "hard link points outside the folder",
        ),
        (
            "device",
            vec![("dev", EntryType::Char, "", b"")],
            "unsupported entry type",
        ),
    ];
    let live = dir.path().join("live");
    make_tree(&live);
    let before = tree(&live);

    for (service, entries, reason) in cases {
        let catalog = Catalog::open(&dir.path().join("state"), service).unwrap();
        let manifest = plant_backup(&catalog, BackupDriver::Directory, &raw_archive(&entries));

        let error = catalog
            .restore(manifest.id.as_str(), &folder_spec(&live), quiet)
            .await
            .unwrap_err();

        match &error {
            BackupError::UnsafeEntry { reason: found, .. } => {
                assert_eq!(*found, reason, "{service}")
            }
            other => panic!("{service}: expected an unsafe entry, got {other}"),
        }
        assert_eq!(tree(&live), before, "{service}");
        assert_eq!(files_in(dir.path()), ["live", "state"], "{service}");
        assert!(!outside.exists(), "{service}");
    }
}

#[tokio::test]
async fn outside_symlink_fails_backup() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live");
    fs::create_dir(&live).unwrap();
    symlink("/etc", live.join("etc")).unwrap();
    let catalog = Catalog::open(&dir.path().join("state"), "files").unwrap();

    let error = catalog
        .create(&folder_spec(&live), None, quiet)
        .await
        .unwrap_err();

    assert_eq!(
        error.to_string(),
        format!(
            "cannot back up `{}`: symbolic link to `/etc` points outside the folder",
            live.join("etc").display()
        )
    );
    assert_eq!(files_in(catalog.dir()), catalog_files(&[]));
}

#[tokio::test]
async fn full_disk_restore_keeps_live_folder() {
    let disk = SmallDisk::mount(4096);
    let dir = tempfile::tempdir().unwrap();
    let live = disk.path.join("live");
    fs::create_dir(&live).unwrap();
    fs::write(live.join("data.bin"), pseudo_random(2_500_000, 3)).unwrap();
    let before = tree(&live);
    let catalog = Catalog::open(&dir.path().join("state"), "files").unwrap();
    let spec = folder_spec(&live);
    let manifest = catalog.create(&spec, None, quiet).await.unwrap();

    let error = catalog
        .restore(manifest.id.as_str(), &spec, quiet)
        .await
        .unwrap_err();

    assert!(error.hint().unwrap().starts_with("free space"), "{error}");
    assert_eq!(tree(&live), before);
    assert_eq!(files_in(&disk.path), ["live"]);
}
