//! Crash tests: `rewind rollback` is killed with SIGKILL at every step
//! boundary and in the middle of the longest steps, through failpoints
//! compiled in with the `failpoints` feature. Each case then recovers with
//! `--resume` and with `--abort`, and the service must end on one
//! consistent version: a clean tree at the original or the target commit.

use std::os::unix::process::ExitStatusExt;

use crate::common::{Fixture, Release, THREE_RELEASES};

/// Failpoints on the success path, in the order a run passes them.
const SUCCESS_PATH: &[&str] = &[
    "step-started-lock",
    "step-finished-lock",
    "step-started-check_clean",
    "step-finished-check_clean",
    "step-started-checkout",
    "checkout-tree-written",
    "step-finished-checkout",
    "step-started-restart",
    "step-output",
    "step-finished-restart",
    "step-started-verify_health",
    "step-finished-verify_health",
    "before-outcome",
];

/// Failpoints on the revert path of a run whose target fails its health
/// check.
const REVERT_PATH: &[&str] = &[
    "step-finished-verify_health",
    "step-started-revert",
    "step-finished-revert",
];

/// Runs a rollback to v1.1.0 that is killed at `failpoint`, and returns
/// the fixture in the state the crash left.
fn killed_run(releases: &[Release], restart: &[&str], failpoint: &str) -> Fixture {
    let fixture = Fixture::new(releases, restart, "");
    let output = fixture
        .rewind(&["rollback", "web", "--to", "v1.1.0", "--yes"])
        .env("FAILPOINTS", format!("{failpoint}=return(kill)"))
        .output()
        .unwrap();
    assert_eq!(
        output.status.signal(),
        Some(9),
        "{failpoint}: the run was not killed\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
    fixture
}

/// Recovers with `mode` and checks the service ends on one version with a
/// clean tree and no unfinished journal.
fn recover_and_check(fixture: &Fixture, mode: &str, failpoint: &str) {
    let output = fixture
        .rewind(&["recover", "web", mode, "--yes"])
        .output()
        .unwrap();
    let code = output.status.code();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let context = format!("{failpoint} {mode}: exit {code:?}\n{stdout}\n{stderr}");

    let head = fixture.head();
    let original = &fixture.commits[2];
    let target = &fixture.commits[1];
    assert!(
        head == *original || head == *target,
        "{context}\nHEAD at {head}"
    );
    let repo = git2::Repository::open(&fixture.repo).unwrap();
    let dirty = repo.statuses(None).unwrap().len();
    assert_eq!(dirty, 0, "{context}\ntree not clean");

    // Nothing may stay unfinished, so a later run is not blocked.
    let journal = rewind::engine::rollback::journal::read(&fixture.state, "web").unwrap();
    assert!(journal.is_none(), "{context}\njournal left: {journal:?}");
    match code {
        // Recovered: resume ends on the target, abort on the original.
        Some(0) => assert_eq!(head, *target, "{context}"),
        Some(1) => assert_eq!(head, *original, "{context}"),
        // Killed before the journal existed: nothing changed.
        Some(3) => {
            assert!(stderr.contains("no unfinished run"), "{context}");
            assert_eq!(head, *original, "{context}");
        }
        other => panic!("{context}\nunexpected exit {other:?}"),
    }
}

#[test]
fn kill_on_success_path_then_resume() {
    for failpoint in SUCCESS_PATH {
        let fixture = killed_run(THREE_RELEASES, &["sh", "-c", "echo restarting"], failpoint);
        recover_and_check(&fixture, "--resume", failpoint);
    }
}

#[test]
fn kill_on_success_path_then_abort() {
    for failpoint in SUCCESS_PATH {
        let fixture = killed_run(THREE_RELEASES, &["sh", "-c", "echo restarting"], failpoint);
        recover_and_check(&fixture, "--abort", failpoint);
    }
}

#[test]
fn kill_during_verify_then_resume() {
    // The restart prints nothing, so the first output line is a probe.
    let fixture = killed_run(THREE_RELEASES, &["true"], "step-output");
    recover_and_check(&fixture, "--resume", "step-output during verify");
}

#[test]
fn kill_on_revert_path_then_recover() {
    let broken = &[
        Release {
            tag: "v1.0.0",
            status: 200,
        },
        Release {
            tag: "v1.1.0",
            status: 500,
        },
        Release {
            tag: "v1.2.0",
            status: 500,
        },
    ];
    for mode in ["--resume", "--abort"] {
        for failpoint in REVERT_PATH {
            let fixture = killed_run(broken, &["true"], failpoint);
            recover_and_check(&fixture, mode, failpoint);
            assert_eq!(fixture.head(), fixture.commits[2], "{failpoint} {mode}");
        }
    }
}

#[test]
fn interrupted_recovery_recovers_again() {
    let fixture = killed_run(THREE_RELEASES, &["true"], "step-finished-checkout");
    let output = fixture
        .rewind(&["recover", "web", "--abort", "--yes"])
        .env("FAILPOINTS", "step-started-revert=return(kill)")
        .output()
        .unwrap();
    assert_eq!(output.status.signal(), Some(9));

    recover_and_check(&fixture, "--abort", "recovery killed at revert");
    assert_eq!(fixture.head(), fixture.commits[2]);
}

/// Failpoints of a `code+data` run, which takes a safety backup and
/// restores data.
const DATA_PATH: &[&str] = &[
    "step-started-safety_backup",
    "step-finished-safety_backup",
    "step-finished-checkout",
    "step-started-restore_data",
    "step-finished-restore_data",
    "step-finished-restart",
];

fn write_value(database: &std::path::Path, value: &str) {
    let connection = rusqlite::Connection::open(database).unwrap();
    connection
        .execute_batch("CREATE TABLE IF NOT EXISTS t (value TEXT); DELETE FROM t;")
        .unwrap();
    connection
        .execute("INSERT INTO t VALUES (?1)", [value])
        .unwrap();
}

fn read_value(database: &std::path::Path) -> String {
    let connection = rusqlite::Connection::open(database).unwrap();
    connection
        .query_row("SELECT value FROM t", [], |row| row.get(0))
        .unwrap()
}

/// A fixture whose service rolls back with `code+data`, holding a backup
/// taken at v1.1.0 and live data written at v1.2.0.
fn data_fixture() -> (Fixture, std::path::PathBuf, usize) {
    let extra = format!(
        "strategy = \"code+data\"\n{}",
        crate::common::backup_table("sqlite", "data.db", "")
    );
    let fixture = Fixture::new(THREE_RELEASES, &["true"], &extra);
    let database = fixture.dir.path().join("data.db");
    write_value(&database, "v1.1.0 data");
    let config = rewind::config::load(&fixture.config).unwrap();
    let spec = config.require("web").unwrap();
    let catalog = rewind::engine::backup::Catalog::open(&fixture.state, "web").unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime
        .block_on(catalog.create(
            spec.backup.as_ref().unwrap(),
            Some(&fixture.commits[1]),
            |_| {},
        ))
        .unwrap();
    write_value(&database, "v1.2.0 data");
    let backups = catalog.list().unwrap().len();
    (fixture, database, backups)
}

#[test]
fn kill_during_data_run_then_recover() {
    for mode in ["--resume", "--abort"] {
        for failpoint in DATA_PATH {
            let (fixture, database, before) = data_fixture();
            let output = fixture
                .rewind(&["rollback", "web", "--to", "v1.1.0", "--yes"])
                .env("FAILPOINTS", format!("{failpoint}=return(kill)"))
                .output()
                .unwrap();
            assert_eq!(output.status.signal(), Some(9), "{failpoint}: not killed");

            recover_and_check(&fixture, mode, failpoint);

            // The data matches the version the service ended on.
            let expected = if fixture.head() == fixture.commits[1] {
                "v1.1.0 data"
            } else {
                "v1.2.0 data"
            };
            assert_eq!(read_value(&database), expected, "{failpoint} {mode}");
            // No backup was lost: the safety backup is added, none removed.
            let catalog = rewind::engine::backup::Catalog::open(&fixture.state, "web").unwrap();
            let after = catalog.list().unwrap().len();
            assert!(
                after >= before,
                "{failpoint} {mode}: {before} backups before, {after} after"
            );
        }
    }
}
