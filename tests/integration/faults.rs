//! Bad input and faults around a run: broken lock files, a state folder
//! that cannot be written, two runs racing, restart commands that hang or
//! delete the deploy directory. Each must end with a clear message and no
//! change to the service beyond what the run reports.

use predicates::prelude::*;

use crate::common::{Fixture, THREE_RELEASES};

#[test]
fn lock_file_that_is_a_folder_is_refused() {
    let fixture = Fixture::new(THREE_RELEASES, &["true"], "");
    std::fs::create_dir_all(fixture.state.join("locks/web.lock")).unwrap();

    fixture
        .rewind(&["rollback", "web", "--to", "v1.1.0", "--yes"])
        .assert()
        .code(3)
        .stdout(predicate::str::contains("cannot use lock file"))
        .stdout(predicate::str::contains("locks/web.lock"));
    assert_eq!(fixture.head(), fixture.commits[2]);
}

#[test]
fn state_folder_that_cannot_be_created_is_refused() {
    let fixture = Fixture::new(THREE_RELEASES, &["true"], "");
    // A file where the state folder should be makes every write fail.
    let text = std::fs::read_to_string(&fixture.config).unwrap();
    std::fs::write(fixture.dir.path().join("blocker"), "").unwrap();
    let text = text.replace("state_dir = \"state\"", "state_dir = \"blocker/state\"");
    std::fs::write(&fixture.config, text).unwrap();

    fixture
        .rewind(&["rollback", "web", "--to", "v1.1.0", "--yes"])
        .assert()
        .code(3)
        .stdout(predicate::str::contains("blocker/state/locks/web.lock"))
        .stdout(predicate::str::contains("nothing was changed"));
    assert_eq!(fixture.head(), fixture.commits[2]);
}

#[test]
fn read_only_state_folder_is_refused() {
    let fixture = Fixture::new(THREE_RELEASES, &["true"], "");
    let state = &fixture.state;
    std::fs::create_dir_all(state).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "ro,size=1m", "tmpfs"])
        .arg(state)
        .status()
        .is_ok_and(|status| status.success());
    assert!(
        mounted,
        "mounting a read-only tmpfs needs root; run the tests as root"
    );

    let output = fixture
        .rewind(&["rollback", "web", "--to", "v1.1.0", "--yes"])
        .output()
        .unwrap();
    let _ = std::process::Command::new("umount").arg(state).status();

    assert_eq!(output.status.code(), Some(3));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("cannot use lock file"), "{stdout}");
    assert_eq!(fixture.head(), fixture.commits[2]);
}

#[test]
fn racing_runs_let_exactly_one_proceed() {
    let fixture = Fixture::new(THREE_RELEASES, &["sleep", "1"], "");
    let start = |fixture: &Fixture| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_rewind"));
        command
            .arg("--config")
            .arg(&fixture.config)
            .args(["rollback", "web", "--to", "v1.1.0", "--yes"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        command.spawn().unwrap()
    };
    let first = start(&fixture);
    let second = start(&fixture);
    let outputs = [
        first.wait_with_output().unwrap(),
        second.wait_with_output().unwrap(),
    ];
    let mut codes: Vec<i32> = outputs.iter().map(|o| o.status.code().unwrap()).collect();
    codes.sort();

    // The loser is refused: by the lock, or, when it planned after the
    // winner's checkout, because the service already runs the target.
    assert_eq!(codes, [0, 3], "{outputs:?}");
    assert_eq!(fixture.head(), fixture.commits[1]);
}

#[test]
fn hanging_restart_times_out_and_reverts() {
    let restart = "grep -q v1.2.0 release.toml || sleep 30";
    let text = "[services.web.restart]\n";
    let fixture = Fixture::new(THREE_RELEASES, &["sh", "-c", restart], "");
    let config = std::fs::read_to_string(&fixture.config).unwrap();
    let config = config.replace("timeout = \"5s\"", "timeout = \"500ms\"");
    assert!(config.contains(text));
    std::fs::write(&fixture.config, config).unwrap();

    fixture
        .rewind(&["rollback", "web", "--to", "v1.1.0", "--yes"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("`sh` timed out after 500ms"))
        .stdout(predicate::str::contains(
            "reverted: web is back on its original version",
        ));
    assert_eq!(fixture.head(), fixture.commits[2]);
}

#[test]
fn deleted_deploy_dir_fails_with_clear_message() {
    // The restart command removes the deploy directory, as a botched
    // deploy script might.
    let fixture = Fixture::new(THREE_RELEASES, &["sh", "-c", "rm -rf \"$PWD\""], "");

    let output = fixture
        .rewind(&["rollback", "web", "--to", "v1.1.0", "--yes"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);

    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("REVERT FAILED"), "{stdout}");
    assert!(stdout.contains("cannot check out v1.2.0"), "{stdout}");
    assert!(!fixture.repo.exists());
}

#[test]
fn force_pushed_away_revision_is_refused() {
    let fixture = Fixture::new(THREE_RELEASES, &["true"], "");
    // A release that a force push dropped: its tag is gone and, after a
    // garbage collection, so is its commit object.
    let repo = git2::Repository::open(&fixture.repo).unwrap();
    let head = repo.head().unwrap().peel_to_commit().unwrap();
    let signature = git2::Signature::now("Dev", "dev@test.invalid").unwrap();
    let dropped = repo
        .commit(
            None,
            &signature,
            &signature,
            "dropped release",
            &head.tree().unwrap(),
            &[&head],
        )
        .unwrap()
        .to_string();
    repo.tag_lightweight(
        "v1.3.0",
        &repo.find_object(dropped.parse().unwrap(), None).unwrap(),
        false,
    )
    .unwrap();
    repo.tag_delete("v1.3.0").unwrap();
    let object = fixture
        .repo
        .join(".git/objects")
        .join(&dropped[..2])
        .join(&dropped[2..]);
    std::fs::remove_file(&object).unwrap();

    for target in ["v1.3.0", dropped.as_str()] {
        fixture
            .rewind(&["rollback", "web", "--to", target, "--yes"])
            .assert()
            .code(3)
            .stderr(predicate::str::contains(format!(
                "unknown revision `{target}`"
            )))
            .stderr(predicate::str::contains("hint: run `rewind versions web`"));
    }
    assert_eq!(fixture.head(), fixture.commits[2]);
}

#[test]
fn missing_history_object_names_the_cause() {
    let fixture = Fixture::new(THREE_RELEASES, &["true"], "");
    // A damaged clone: a commit in the middle of the history is missing.
    let commit = &fixture.commits[1];
    let object = fixture
        .repo
        .join(".git/objects")
        .join(&commit[..2])
        .join(&commit[2..]);
    std::fs::remove_file(&object).unwrap();

    fixture
        .rewind(&["rollback", "web", "--to", "v1.0.0", "--yes"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("git operation failed in"))
        .stderr(predicate::str::contains("caused by:"))
        .stderr(predicate::str::contains(&commit[..7]));
    assert_eq!(fixture.head(), fixture.commits[2]);
}
