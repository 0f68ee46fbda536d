//! Backup and restore: rewind's `Catalog::create` and `Catalog::restore`
//! beside the bare tools doing the same copy, for a PostgreSQL database
//! filled by `pgbench -i` and for a generated folder of mixed files.
//!
//! - PostgreSQL backup: rewind against `pg_dump --format=custom`.
//! - PostgreSQL restore: rewind against `pg_restore --clean --if-exists
//!   --single-transaction`, both from the same dump.
//! - Folder backup: rewind against `tar -c | zstd -3 --single-thread`,
//!   the level and thread count of rewind's directory driver.
//! - Folder restore: rewind against `zstd -d | tar -x` into a new folder,
//!   then two renames and removing the old folder, as rewind does.
//!
//! The benchmark starts its own PostgreSQL server in a temporary folder,
//! generates the data there, and removes everything at the end. After the
//! fixtures are ready, the benchmark, the server and every tool run on one
//! core. Each scenario runs one untimed round, then alternates which
//! subject goes first, with `sync` run untimed before each subject so
//! that no subject pays for the page cache another left dirty. The folder
//! restore is compared twice: with the bare tools as they are, which leave
//! the extracted files unwritten in the page cache, and with `sync -f` on
//! the new folder before the swap, as rewind syncs before its swap.
//!
//! `cargo bench --bench backup`. Parameters (environment):
//! `BACKUP_RUNS` (5 per subject and scenario), `BACKUP_PG_SCALE` (14, the
//! `pgbench` scale factor), `BACKUP_DIR_MB` (220, the folder size),
//! `BACKUP_CORE` (1), `BACKUP_SCENARIOS` (`postgres,directory`), and
//! `BACKUP_BREAKDOWN=1` to time the extra passes of a folder restore.

mod backup_support;

use std::path::Path;
use std::time::{Duration, Instant};

use backup_support::postgres::Postgres;
use backup_support::{Summary, files, param, pin_process, pin_thread, run, shell, time};
use rewind::config::{BackupSource, BackupSpec, DatabaseSpec};
use rewind::engine::backup::{Catalog, Manifest};

/// Smallest database and folder the results are recorded for.
const MIN_BYTES: u64 = 200 * 1000 * 1000;

/// Time limit that rewind applies to one backup or restore.
const TIMEOUT: Duration = Duration::from_secs(3600);

/// Timings of one scenario, in the order they ran.
struct Timings {
    name: &'static str,
    rewind: Vec<Duration>,
    bare: Vec<Duration>,
}

fn main() {
    if !backup_support::is_bench_run() {
        return;
    }
    let runs: usize = param("BACKUP_RUNS", 5);
    let scale: u32 = param("BACKUP_PG_SCALE", 14);
    let folder_mb: u64 = param("BACKUP_DIR_MB", 220);
    let core: usize = param("BACKUP_CORE", 1);
    let scenarios: String = param("BACKUP_SCENARIOS", "postgres,directory".to_owned());

    let work = tempfile::Builder::new()
        .prefix("rewind-backup-bench-")
        .tempdir()
        .expect("create the work folder");
    println!("work folder: {}", work.path().display());
    println!("load average at start: {}", backup_support::load_average());

    let mut results = Vec::new();
    if scenarios.contains("postgres") {
        results.extend(postgres_scenarios(work.path(), scale, runs, core));
    }
    if scenarios.contains("directory") {
        results.extend(directory_scenarios(work.path(), folder_mb, runs, core));
    }
    println!("load average at end: {}", backup_support::load_average());
    print_table(&results);
}

fn postgres_scenarios(work: &Path, scale: u32, runs: usize, core: usize) -> Vec<Timings> {
    let server = Postgres::start(work);
    server.query("postgres", "CREATE DATABASE bench");
    eprintln!("filling the database with pgbench -i -s {scale}");
    run(server
        .client("pgbench")
        .args(["-i", "-q", "-s", &scale.to_string()])
        .arg(server.url("bench")));
    let size: u64 = server
        .query("bench", "SELECT pg_database_size('bench')")
        .parse()
        .expect("pg_database_size returns a number");
    println!(
        "postgres: pgbench scale {scale}, database size {}",
        megabytes(size)
    );
    if size < MIN_BYTES {
        eprintln!("warning: the database is below 200 MB, raise BACKUP_PG_SCALE");
    }

    pin_process(server.pid(), core);
    pin_thread(core);
    let runtime = runtime();
    let catalog = Catalog::open(&work.join("state"), "pg").expect("open the catalog");
    let url = server.url("bench");
    let spec = BackupSpec {
        source: BackupSource::Postgres(DatabaseSpec {
            url: url.parse().expect("a valid URL"),
            password_env: None,
        }),
        keep: 1000,
        max_age: None,
        timeout: TIMEOUT,
    };
    let bare_dump = work.join("bare.dump");

    let backup_rewind = || {
        runtime
            .block_on(catalog.create(&spec, None, |_| {}))
            .expect("rewind backup of postgres")
    };
    let backup_bare = || {
        run(server
            .client("pg_dump")
            .args(["--format=custom", "--no-password"])
            .arg(format!("--dbname={url}"))
            .arg("--file")
            .arg(&bare_dump));
    };
    let source = backup_rewind();
    backup_bare();
    let dump_size = fs_size(&catalog.data_path(&source));
    println!(
        "postgres: rewind dump {}, pg_dump file {}",
        megabytes(dump_size),
        megabytes(fs_size(&bare_dump))
    );

    let backup = alternate(
        "postgres backup",
        runs,
        || timed_backup(&catalog, backup_rewind),
        || time(backup_bare),
    );

    let data = catalog.data_path(&source);
    let id = source.id.to_string();
    let restore_rewind = || {
        runtime
            .block_on(catalog.restore(&id, &spec, |_| {}))
            .expect("rewind restore of postgres");
    };
    let restore_bare = || {
        run(server
            .client("pg_restore")
            .args([
                "--clean",
                "--if-exists",
                "--single-transaction",
                "--no-password",
            ])
            .arg(format!("--dbname={url}"))
            .arg(&data));
    };
    restore_rewind();
    restore_bare();
    let restore = alternate(
        "postgres restore",
        runs,
        || time(restore_rewind),
        || time(restore_bare),
    );
    drop(server);
    vec![backup, restore]
}

fn directory_scenarios(work: &Path, folder_mb: u64, runs: usize, core: usize) -> Vec<Timings> {
    let live = work.join("files");
    std::fs::create_dir(&live).expect("create the fixture folder");
    let (count, bytes) = files::generate(&live, folder_mb * 1000 * 1000);
    println!("directory: {count} files, {}", megabytes(bytes));
    if bytes < MIN_BYTES {
        eprintln!("warning: the folder is below 200 MB, raise BACKUP_DIR_MB");
    }

    pin_thread(core);
    let runtime = runtime();
    let catalog = Catalog::open(&work.join("state"), "files").expect("open the catalog");
    let spec = BackupSpec {
        source: BackupSource::Directory { path: live.clone() },
        keep: 1000,
        max_age: None,
        timeout: TIMEOUT,
    };
    let bare_archive = work.join("bare.tar.zst");
    let backup_rewind = || {
        runtime
            .block_on(catalog.create(&spec, None, |_| {}))
            .expect("rewind backup of the folder")
    };
    let backup_bare = || {
        shell(&format!(
            "set -e -o pipefail; tar -cf - -C {} . | zstd -3 --single-thread -q -c > {}",
            quote(&live),
            quote(&bare_archive)
        ));
    };
    let source = backup_rewind();
    backup_bare();
    println!(
        "directory: rewind archive {}, tar | zstd archive {}",
        megabytes(fs_size(&catalog.data_path(&source))),
        megabytes(fs_size(&bare_archive))
    );
    let backup = alternate(
        "directory backup",
        runs,
        || timed_backup(&catalog, backup_rewind),
        || time(backup_bare),
    );

    let data = catalog.data_path(&source);
    let id = source.id.to_string();
    let restore_rewind = || {
        runtime
            .block_on(catalog.restore(&id, &spec, |_| {}))
            .expect("rewind restore of the folder");
    };
    let staging = work.join("files.new");
    let replaced = work.join("files.old");
    let restore_bare = || {
        shell(&format!(
            "set -e -o pipefail; mkdir {new}; zstd -dc {data} | tar -xf - -C {new}; \
             mv {live} {old}; mv {new} {live}; rm -rf {old}",
            new = quote(&staging),
            old = quote(&replaced),
            data = quote(&data),
            live = quote(&live),
        ));
    };
    // The same tools, then `sync -f`: syncfs on the new folder's file
    // system before the swap, which is what rewind waits for.
    let restore_bare_synced = || {
        shell(&format!(
            "set -e -o pipefail; mkdir {new}; zstd -dc {data} | tar -xf - -C {new}; \
             sync -f {new}; mv {live} {old}; mv {new} {live}; rm -rf {old}",
            new = quote(&staging),
            old = quote(&replaced),
            data = quote(&data),
            live = quote(&live),
        ));
    };
    restore_rewind();
    restore_bare();
    let restore = alternate(
        "directory restore",
        runs,
        || time(restore_rewind),
        || time(restore_bare),
    );
    let restore_synced = alternate(
        "directory restore, bare tool synced",
        runs,
        || time(restore_rewind),
        || time(restore_bare_synced),
    );
    if std::env::var_os("BACKUP_BREAKDOWN").is_some() {
        print_restore_breakdown(&data, &live, runs, &restore_bare);
    }
    vec![backup, restore, restore_synced]
}

/// Times, apart from each other, the passes that a directory restore
/// makes besides the extraction itself: hashing the archive, reading
/// every entry to check it, and syncing every extracted file and folder.
/// Runs with `BACKUP_BREAKDOWN=1`.
fn print_restore_breakdown(archive: &Path, live: &Path, runs: usize, restore_bare: &dyn Fn()) {
    let mut hash = Vec::new();
    let mut read = Vec::new();
    let mut sync = Vec::new();
    for _ in 0..runs {
        hash.push(time(|| {
            let mut file = std::fs::File::open(archive).expect("open the archive");
            let mut hasher = blake3::Hasher::new();
            std::io::copy(&mut file, &mut hasher).expect("hash the archive");
        }));
        read.push(time(|| {
            let file = std::fs::File::open(archive).expect("open the archive");
            let decoder = zstd::Decoder::new(file).expect("start zstd");
            let mut entries = tar::Archive::new(decoder);
            for entry in entries.entries().expect("read the archive") {
                let mut entry = entry.expect("read an entry");
                std::io::copy(&mut entry, &mut std::io::sink()).expect("read an entry");
            }
        }));
        // A fresh extraction leaves the files dirty in the page cache, as
        // rewind's extraction does before it syncs them.
        restore_bare();
        sync.push(time(|| sync_tree(live)));
    }
    for (pass, timings) in [
        ("BLAKE3 of the archive", hash),
        ("zstd + tar read of every entry", read),
        ("fsync of every file and folder", sync),
    ] {
        let summary = Summary::of(&timings);
        println!(
            "directory restore pass: {pass}: median {:.3} s, max {:.3} s",
            summary.median, summary.max
        );
    }
}

/// Opens and fsyncs every file and folder below `root`.
fn sync_tree(root: &Path) {
    let folder = std::fs::File::open(root).expect("open a folder");
    for entry in std::fs::read_dir(root).expect("read a folder") {
        let entry = entry.expect("read a folder");
        if entry.file_type().expect("read a file type").is_dir() {
            sync_tree(&entry.path());
        } else {
            let file = std::fs::File::open(entry.path()).expect("open a file");
            file.sync_all().expect("fsync a file");
        }
    }
    folder.sync_all().expect("fsync a folder");
}

/// Runs `rewind` and `bare` `runs` times each, swapping which goes first
/// on every round.
fn alternate(
    name: &'static str,
    runs: usize,
    mut rewind: impl FnMut() -> Duration,
    mut bare: impl FnMut() -> Duration,
) -> Timings {
    let mut timings = Timings {
        name,
        rewind: Vec::new(),
        bare: Vec::new(),
    };
    for round in 0..runs {
        // Each subject starts with nothing left to write back, so neither
        // pays for the page cache the other left dirty.
        if round % 2 == 0 {
            flush_page_cache();
            timings.rewind.push(rewind());
            flush_page_cache();
            timings.bare.push(bare());
        } else {
            flush_page_cache();
            timings.bare.push(bare());
            flush_page_cache();
            timings.rewind.push(rewind());
        }
        eprintln!(
            "{name} round {round}: rewind {:.3} s, bare {:.3} s",
            timings.rewind[round].as_secs_f64(),
            timings.bare[round].as_secs_f64()
        );
    }
    timings
}

/// Writes every dirty page of every file system to disk (`sync`).
fn flush_page_cache() {
    let status = std::process::Command::new("sync")
        .status()
        .expect("run sync");
    assert!(status.success(), "sync failed");
}

/// Removes the data file and manifest of `manifest`, so repeated backups
/// do not fill the disk.
fn remove_backup(catalog: &Catalog, manifest: &Manifest) {
    let _ = std::fs::remove_file(catalog.data_path(manifest));
    let _ = std::fs::remove_file(catalog.dir().join(format!("{}.json", manifest.id)));
}

/// Times one rewind backup and removes it afterwards, outside the timing.
fn timed_backup(catalog: &Catalog, backup: impl FnOnce() -> Manifest) -> Duration {
    let started = Instant::now();
    let manifest = backup();
    let elapsed = started.elapsed();
    remove_backup(catalog, &manifest);
    elapsed
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("start the tokio runtime")
}

fn print_table(results: &[Timings]) {
    println!();
    println!(
        "| Scenario | Subject | n | Median (s) | Min (s) | p99 (s) | Max (s) | Ratio of medians |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for timings in results {
        let rewind = Summary::of(&timings.rewind);
        let bare = Summary::of(&timings.bare);
        let ratio = rewind.median / bare.median;
        for (subject, summary, ratio) in [
            ("rewind", rewind, format!("{ratio:.3}")),
            ("bare tool", bare, "1".to_owned()),
        ] {
            println!(
                "| {} | {subject} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {ratio} |",
                timings.name, summary.count, summary.median, summary.min, summary.p99, summary.max
            );
        }
    }
}

fn fs_size(path: &Path) -> u64 {
    std::fs::metadata(path)
        .map(|metadata| metadata.len())
        .unwrap_or(0)
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// Quotes `path` for `sh`.
fn quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}
