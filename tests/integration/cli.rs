//! The command line against a real repository and a real health server.

use predicates::prelude::*;
use serde_json::Value;

use crate::common::{Fixture, THREE_RELEASES};

fn json(output: &[u8]) -> Value {
    serde_json::from_slice(output).expect("stdout is JSON")
}

#[test]
fn check_accepts_valid_config() {
    let fixture = Fixture::new(THREE_RELEASES, &["true"], "");

    fixture
        .rewind(&["check"])
        .assert()
        .code(0)
        .stdout(predicate::str::ends_with("ok, 1 services (web)\n"));
}

#[test]
fn check_rejects_unknown_key_with_position() {
    let fixture = Fixture::new(
        THREE_RELEASES,
        &["true"],
        "[services.web.alerts]\nkeep = 3\n",
    );

    fixture
        .rewind(&["check"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "services.toml:15:15: unknown field `alerts`",
        ))
        .stderr(predicate::str::contains("hint: remove the key"));
}

#[test]
fn every_subcommand_validates_first() {
    let fixture = Fixture::new(
        THREE_RELEASES,
        &["true"],
        "[services.web.alerts]\nkeep = 3\n",
    );

    for args in [
        vec!["status"],
        vec!["versions", "web"],
        vec!["plan", "web", "--to", "v1.1.0"],
        vec!["rollback", "web", "--to", "v1.1.0", "--yes"],
    ] {
        fixture
            .rewind(&args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains("unknown field `alerts`"));
    }
}

#[test]
fn missing_config_names_searched_paths() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = assert_cmd::Command::cargo_bin("rewind").unwrap();
    command
        .current_dir(dir.path())
        .env("XDG_CONFIG_HOME", dir.path().join("xdg"))
        .arg("status")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no configuration file found"))
        .stderr(predicate::str::contains("hint: pass `--config PATH`"));
}

#[test]
fn unknown_service_lists_known_ones() {
    let fixture = Fixture::new(THREE_RELEASES, &["true"], "");

    fixture
        .rewind(&["versions", "billing"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown service `billing`"))
        .stderr(predicate::str::contains("hint: known services: web"));
}

#[test]
fn status_json_has_documented_shape() {
    let fixture = Fixture::new(THREE_RELEASES, &["true"], "");
    let output = fixture
        .rewind(&["status", "--json"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let status = json(&output);
    let web = &status["services"][0];

    assert_eq!(web["name"], "web");
    assert_eq!(web["health"]["state"], "unhealthy");
    assert_eq!(web["health"]["status"], 500);
    assert_eq!(web["version"]["commit"], fixture.commits[2].as_str());
    assert_eq!(web["version"]["label"], "v1.2.0");
    assert_eq!(web["version"]["branch"], "main");
}

#[test]
fn versions_json_lists_history_newest_first() {
    let fixture = Fixture::new(THREE_RELEASES, &["true"], "");
    let output = fixture
        .rewind(&["versions", "web", "--json"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let versions = json(&output);
    let history = versions["history"].as_array().unwrap();

    assert_eq!(versions["service"], "web");
    assert_eq!(history.len(), 3);
    let tags: Vec<&str> = history
        .iter()
        .map(|e| e["tags"][0].as_str().unwrap())
        .collect();
    assert_eq!(tags, ["v1.2.0", "v1.1.0", "v1.0.0"]);
    let deployed: Vec<bool> = history
        .iter()
        .map(|e| e["deployed"].as_bool().unwrap())
        .collect();
    assert_eq!(deployed, [true, false, false]);
    assert_eq!(history[0]["commit"], fixture.commits[2].as_str());
    assert_eq!(history[0]["subject"], "release v1.2.0");
    assert_eq!(history[2]["time"], 1_780_000_000);
}

#[test]
fn versions_text_marks_deployed() {
    let fixture = Fixture::new(THREE_RELEASES, &["true"], "");
    let output = fixture
        .rewind(&["versions", "web"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(output).unwrap();
    let lines: Vec<&str> = text.lines().collect();

    assert_eq!(lines[0], "web on main");
    assert!(lines[1].starts_with("* "), "{}", lines[1]);
    assert!(lines[1].contains("v1.2.0"), "{}", lines[1]);
    assert!(lines[2].starts_with("  "), "{}", lines[2]);
}

#[test]
fn plan_lists_undone_commits_and_steps() {
    let fixture = Fixture::new(THREE_RELEASES, &["true"], "");
    let output = fixture
        .rewind(&["plan", "web", "--to", "v1.0.0"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(output).unwrap();

    assert!(text.starts_with("plan: web v1.2.0 -> v1.0.0"), "{text}");
    assert!(text.contains("commits undone (2):"), "{text}");
    assert!(text.contains("release v1.2.0"), "{text}");
    assert!(text.contains("release v1.1.0"), "{text}");
    assert!(text.contains("  5. wait for 1 passing probe of"), "{text}");
    assert_eq!(fixture.head(), fixture.commits[2], "plan changed nothing");
}

#[test]
fn plan_json_names_versions_and_steps() {
    let fixture = Fixture::new(THREE_RELEASES, &["true"], "");
    let output = fixture
        .rewind(&["plan", "web", "--to", "HEAD~1", "--json"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let plan = json(&output);
    let steps: Vec<&str> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();

    assert_eq!(plan["from"]["label"], "v1.2.0");
    assert_eq!(plan["to"]["label"], "v1.1.0");
    assert_eq!(plan["to"]["commit"], fixture.commits[1].as_str());
    assert_eq!(plan["undone"].as_array().unwrap().len(), 1);
    assert_eq!(
        steps,
        [
            "lock",
            "check_clean",
            "checkout",
            "restart",
            "verify_health"
        ]
    );
}

#[test]
fn plan_to_deployed_version_is_refused() {
    let fixture = Fixture::new(THREE_RELEASES, &["true"], "");

    fixture
        .rewind(&["plan", "web", "--to", "v1.2.0"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains(
            "service `web` already runs `v1.2.0`",
        ));
}

#[test]
fn rollback_moves_head_and_verifies_health() {
    let fixture = Fixture::new(THREE_RELEASES, &["sh", "-c", "echo restarting web"], "");
    let output = fixture
        .rewind(&["rollback", "web", "--to", "v1.1.0", "--yes"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(output).unwrap();

    assert_eq!(fixture.head(), fixture.commits[1]);
    assert!(text.contains("[1/5] lock ..."), "{text}");
    assert!(text.contains("      | restarting web"), "{text}");
    assert!(
        text.contains("verify health ok: healthy after 1 probes"),
        "{text}"
    );
    assert!(
        text.ends_with("done: web is on the target version and healthy\n"),
        "{text}"
    );
}

#[test]
fn rollback_reverts_when_restart_fails() {
    // The restart fails on every release but the deployed one.
    let restart = "grep -q v1.2.0 release.toml || { echo cannot start; exit 4; }";
    let fixture = Fixture::new(THREE_RELEASES, &["sh", "-c", restart], "");
    let output = fixture
        .rewind(&["rollback", "web", "--to", "v1.1.0", "--yes"])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(output).unwrap();

    assert_eq!(fixture.head(), fixture.commits[2]);
    assert!(
        text.contains("restart FAILED: `sh` failed with exit status: 4"),
        "{text}"
    );
    assert!(
        text.contains("revert ok: back on v1.2.0 and restarted"),
        "{text}"
    );
    assert!(
        text.contains("reverted: web is back on its original version"),
        "{text}"
    );
}

#[test]
fn rollback_reverts_when_health_fails() {
    let releases = &[
        crate::common::Release {
            tag: "v1.0.0",
            status: 503,
        },
        crate::common::Release {
            tag: "v1.1.0",
            status: 500,
        },
    ];
    let fixture = Fixture::new(releases, &["true"], "");
    let output = fixture
        .rewind(&["rollback", "web", "--to", "v1.0.0", "--yes"])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(output).unwrap();

    assert_eq!(fixture.head(), fixture.commits[1]);
    assert!(
        text.contains("verify health FAILED: health did not pass within 2s"),
        "{text}"
    );
    assert!(text.contains("status 503"), "{text}");
    assert!(text.contains("reverted: web is back"), "{text}");
}

#[test]
fn rollback_refuses_dirty_tree_and_keeps_changes() {
    let fixture = Fixture::new(THREE_RELEASES, &["true"], "");
    let edited = "version = \"local edit\"\n";
    std::fs::write(fixture.repo.join("release.toml"), edited).unwrap();
    std::fs::write(fixture.repo.join("notes.txt"), "keep me\n").unwrap();

    fixture
        .rewind(&["rollback", "web", "--to", "v1.1.0", "--yes"])
        .assert()
        .code(3)
        .stdout(predicate::str::contains(
            "uncommitted changes: notes.txt, release.toml",
        ))
        .stdout(predicate::str::contains("nothing was changed"));

    assert_eq!(fixture.head(), fixture.commits[2]);
    assert_eq!(
        std::fs::read_to_string(fixture.repo.join("release.toml")).unwrap(),
        edited
    );
    assert_eq!(
        std::fs::read_to_string(fixture.repo.join("notes.txt")).unwrap(),
        "keep me\n"
    );
}

#[test]
fn rollback_refuses_unknown_revision() {
    let fixture = Fixture::new(THREE_RELEASES, &["true"], "");

    fixture
        .rewind(&["rollback", "web", "--to", "v9.9.9", "--yes"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("unknown revision `v9.9.9`"))
        .stderr(predicate::str::contains("hint: run `rewind versions web`"));
    assert_eq!(fixture.head(), fixture.commits[2]);
}

#[test]
fn rollback_refuses_held_lock_naming_holder() {
    let fixture = Fixture::new(THREE_RELEASES, &["true"], "");
    let _lock = rewind::engine::coord::ServiceLock::acquire(&fixture.state, "web").unwrap();
    let holder = format!("(pid {})", std::process::id());

    fixture
        .rewind(&["rollback", "web", "--to", "v1.1.0", "--yes"])
        .assert()
        .code(3)
        .stdout(predicate::str::contains("service `web` is locked by"))
        .stdout(predicate::str::contains(holder));
    assert_eq!(fixture.head(), fixture.commits[2]);
}

#[test]
fn rollback_without_yes_needs_a_terminal() {
    let fixture = Fixture::new(THREE_RELEASES, &["true"], "");

    fixture
        .rewind(&["rollback", "web", "--to", "v1.1.0"])
        .write_stdin("")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("hint: pass `--yes`"));
    assert_eq!(fixture.head(), fixture.commits[2]);
}

#[test]
fn rollback_json_streams_events() {
    let fixture = Fixture::new(THREE_RELEASES, &["true"], "");
    let output = fixture
        .rewind(&["rollback", "web", "--to", "v1.1.0", "--yes", "--json"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(output).unwrap();
    let events: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();

    assert_eq!(events[0]["event"], "step_started");
    assert_eq!(events[0]["step"], "lock");
    let last = events.last().unwrap();
    assert_eq!(last["event"], "run_finished");
    assert_eq!(last["outcome"]["result"], "succeeded");
}

#[test]
fn history_records_reason_and_outcome() {
    let fixture = Fixture::new(THREE_RELEASES, &["true"], "");
    fixture
        .rewind(&[
            "rollback",
            "web",
            "--to",
            "v1.1.0",
            "--yes",
            "--reason",
            "checkout 500s",
        ])
        .assert()
        .code(0);
    fixture
        .rewind(&["rollback", "web", "--to", "v9", "--yes"])
        .assert()
        .code(3);
    let output = fixture
        .rewind(&["history", "--json"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let runs = json(&output)["runs"].as_array().unwrap().clone();

    assert_eq!(
        runs.len(),
        1,
        "an unknown revision is refused before a run starts"
    );
    assert_eq!(runs[0]["service"], "web");
    assert_eq!(runs[0]["reason"], "checkout 500s");
    assert_eq!(runs[0]["from"]["label"], "v1.2.0");
    assert_eq!(runs[0]["to"]["label"], "v1.1.0");
    assert_eq!(runs[0]["outcome"]["result"], "succeeded");
    assert_eq!(runs[0]["kind"], "rollback");
}

#[test]
fn failed_run_is_in_history() {
    let restart = "grep -q v1.2.0 release.toml || exit 4";
    let fixture = Fixture::new(THREE_RELEASES, &["sh", "-c", restart], "");
    fixture
        .rewind(&["rollback", "web", "--to", "v1.1.0", "--yes"])
        .assert()
        .code(1);
    let output = fixture
        .rewind(&["history"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(output).unwrap();

    assert!(
        text.contains("web          rollback v1.2.0 -> v1.1.0      reverted"),
        "{text}"
    );
}

#[test]
fn undo_returns_to_version_before_rollback() {
    let fixture = Fixture::new(THREE_RELEASES, &["true"], "");
    fixture
        .rewind(&["rollback", "web", "--to", "v1.0.0", "--yes"])
        .assert()
        .code(0);
    assert_eq!(fixture.head(), fixture.commits[0]);

    // The undo goes back to v1.2.0, which fails its health check, so the
    // undo itself is reverted to v1.0.0.
    fixture.rewind(&["undo", "web", "--yes"]).assert().code(1);
    assert_eq!(fixture.head(), fixture.commits[0]);
    let output = fixture
        .rewind(&["history", "--json"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let runs = json(&output)["runs"].as_array().unwrap().clone();
    assert_eq!(runs[0]["kind"], "undo");
    assert_eq!(runs[0]["to"]["label"], "v1.2.0");
}

#[test]
fn undo_of_healthy_rollback_succeeds() {
    let releases = &[
        crate::common::Release {
            tag: "v1.0.0",
            status: 200,
        },
        crate::common::Release {
            tag: "v1.1.0",
            status: 200,
        },
    ];
    let fixture = Fixture::new(releases, &["true"], "");
    fixture
        .rewind(&["rollback", "web", "--to", "v1.0.0", "--yes"])
        .assert()
        .code(0);
    fixture
        .rewind(&["undo", "web", "--yes"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("plan: web v1.0.0 -> v1.1.0"));

    assert_eq!(fixture.head(), fixture.commits[1]);
}

#[test]
fn undo_without_rollback_is_refused() {
    let fixture = Fixture::new(THREE_RELEASES, &["true"], "");

    fixture
        .rewind(&["undo", "web", "--yes"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains(
            "no successful rollback of `web` to undo",
        ));
}

#[test]
fn recover_without_journal_is_refused() {
    let fixture = Fixture::new(THREE_RELEASES, &["true"], "");

    fixture
        .rewind(&["recover", "web", "--resume", "--yes"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains(
            "no unfinished run of `web` to recover",
        ));
}

#[test]
fn recover_needs_a_mode() {
    let fixture = Fixture::new(THREE_RELEASES, &["true"], "");

    fixture
        .rewind(&["recover", "web", "--yes"])
        .assert()
        .code(2);
}

#[test]
fn read_only_flag_refuses_rollback() {
    let fixture = Fixture::new(THREE_RELEASES, &["true"], "");

    fixture
        .rewind(&["--read-only", "rollback", "web", "--to", "v1.1.0", "--yes"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains(
            "read-only mode: `rewind rollback` changes services and is disabled by `--read-only`",
        ));
    assert_eq!(fixture.head(), fixture.commits[2]);
}

#[test]
fn read_only_config_refuses_undo() {
    let fixture = Fixture::new(THREE_RELEASES, &["true"], "");
    let text = std::fs::read_to_string(&fixture.config).unwrap();
    std::fs::write(&fixture.config, format!("read_only = true\n{text}")).unwrap();

    fixture
        .rewind(&["undo", "web", "--yes"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains(
            "disabled by `read_only = true` in",
        ));
}

#[test]
fn unfinished_run_warns_and_blocks() {
    let fixture = Fixture::new(THREE_RELEASES, &["true"], "");
    fixture.leave_unfinished_run("v1.1.0");

    fixture
        .rewind(&["status"])
        .assert()
        .code(0)
        .stderr(predicate::str::contains(
            "warning: unfinished rollback of `web` v1.2.0 -> v1.1.0",
        ))
        .stderr(predicate::str::contains(
            "hint: run `rewind recover web --resume` or `--abort`",
        ));
    fixture
        .rewind(&["rollback", "web", "--to", "v1.0.0", "--yes"])
        .assert()
        .code(3)
        .stdout(predicate::str::contains(
            "run `rewind recover web --resume` or `--abort` first",
        ));
    assert_eq!(fixture.head(), fixture.commits[1]);
}

#[test]
fn recover_resume_finishes_the_run() {
    let fixture = Fixture::new(THREE_RELEASES, &["true"], "");
    fixture.leave_unfinished_run("v1.1.0");

    fixture
        .rewind(&["recover", "web", "--resume", "--yes"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "recover web: resume: finish the move to v1.1.0",
        ));
    assert_eq!(fixture.head(), fixture.commits[1]);
    fixture
        .rewind(&["recover", "web", "--resume", "--yes"])
        .assert()
        .code(3);
}

#[test]
fn recover_abort_returns_to_original() {
    let fixture = Fixture::new(THREE_RELEASES, &["true"], "");
    fixture.leave_unfinished_run("v1.1.0");

    fixture
        .rewind(&["recover", "web", "--abort", "--yes"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "revert ok: back on v1.2.0 and restarted",
        ));
    assert_eq!(fixture.head(), fixture.commits[2]);
}
