//! Runs with the data strategies on a real SQLite database: the chosen
//! backup is restored, a failed run puts the safety backup back, and an
//! undo restores what the run replaced.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::test_support::{repo, spec};
use super::{
    PlanRequest, RollbackError, RunOptions, RunOutcome, execute, plan_rollback, plan_undo,
};
use crate::config::{BackupSource, BackupSpec, ServiceSpec, Strategy};
use crate::engine::backup::Catalog;
use crate::engine::versions;

/// A repository with releases v1 to v3, a database holding `value`, and
/// the folders around them.
struct Setup {
    _dir: tempfile::TempDir,
    state: PathBuf,
    database: PathBuf,
    ids: Vec<String>,
    spec: ServiceSpec,
}

fn setup(port: u16, restart: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let code = dir.path().join("code");
    std::fs::create_dir(&code).unwrap();
    let ids = repo(&code, &["v1", "v2", "v3"]);
    let database = dir.path().join("data.db");
    write_value(&database, "v3-data");

    let mut spec = spec(&code);
    spec.restart.command = vec!["sh".into(), "-c".into(), restart.into()];
    spec.health.url = format!("http://127.0.0.1:{port}/health").parse().unwrap();
    spec.rollback.verify_timeout = Duration::from_secs(2);
    spec.rollback.strategy = Strategy::CodeData;
    spec.backup = Some(BackupSpec {
        source: BackupSource::Sqlite {
            path: database.clone(),
        },
        keep: 10,
        max_age: None,
        timeout: Duration::from_secs(30),
    });
    Setup {
        state: dir.path().join("state"),
        _dir: dir,
        database,
        ids,
        spec,
    }
}

fn write_value(database: &Path, value: &str) {
    let connection = rusqlite::Connection::open(database).unwrap();
    connection
        .execute_batch("CREATE TABLE IF NOT EXISTS t (value TEXT); DELETE FROM t;")
        .unwrap();
    connection
        .execute("INSERT INTO t VALUES (?1)", [value])
        .unwrap();
}

fn read_value(database: &Path) -> String {
    let connection = rusqlite::Connection::open(database).unwrap();
    connection
        .query_row("SELECT value FROM t", [], |row| row.get(0))
        .unwrap()
}

/// Takes a backup holding `value`, recorded as taken at `commit`.
async fn backup_at(setup: &Setup, commit: &str, value: &str) -> String {
    let current = read_value(&setup.database);
    write_value(&setup.database, value);
    let catalog = Catalog::open(&setup.state, "orders").unwrap();
    let backup = setup.spec.backup.as_ref().unwrap();
    let manifest = catalog.create(backup, Some(commit), |_| {}).await.unwrap();
    write_value(&setup.database, &current);
    manifest.id.as_str().to_owned()
}

/// Serves `200 ok` to every request on a free loopback port.
async fn healthy_server() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = [0u8; 1024];
                let _ = stream.read(&mut request).await;
                let response =
                    "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    port
}

async fn run(setup: &Setup, request: &PlanRequest) -> RunOutcome {
    let plan = plan_rollback(&setup.spec, &setup.state, request).unwrap();
    let (events, _receiver) = mpsc::unbounded_channel();
    let client = crate::engine::health::client();
    execute(
        &plan,
        &setup.spec,
        &setup.state,
        &client,
        &events,
        RunOptions::default(),
    )
    .await
}

fn to(target: &str) -> PlanRequest {
    PlanRequest {
        target: Some(target.to_owned()),
        ..PlanRequest::default()
    }
}

#[tokio::test]
async fn code_data_restores_backup_taken_at_target() {
    let port = healthy_server().await;
    let setup = setup(port, "true");
    let backup = backup_at(&setup, &setup.ids[1], "v2-data").await;
    let plan = plan_rollback(&setup.spec, &setup.state, &to("v2")).unwrap();

    assert_eq!(plan.restore.as_ref().unwrap().id, backup);
    assert_eq!(plan.restore.as_ref().unwrap().label, "v2");
    let outcome = run(&setup, &to("v2")).await;

    assert_eq!(outcome, RunOutcome::Succeeded);
    assert_eq!(read_value(&setup.database), "v2-data");
    assert_eq!(
        versions::resolve(&setup.spec.deploy_dir, "HEAD").unwrap(),
        setup.ids[1]
    );
    let audit = crate::engine::coord::audit::read(&setup.state, None).unwrap();
    let safety = audit[0]
        .safety_backup
        .clone()
        .expect("a safety backup is recorded");
    assert_eq!(audit[0].backups, [safety.clone(), backup]);
}

#[tokio::test]
async fn failed_restart_puts_safety_backup_back() {
    let port = healthy_server().await;
    // The restart fails on every release but the deployed v3.
    let setup = setup(port, "grep -q v3 release.txt || exit 5");
    backup_at(&setup, &setup.ids[1], "v2-data").await;
    let outcome = run(&setup, &to("v2")).await;

    assert!(
        matches!(outcome, RunOutcome::Reverted { .. }),
        "{outcome:?}"
    );
    assert_eq!(read_value(&setup.database), "v3-data");
    assert_eq!(
        versions::resolve(&setup.spec.deploy_dir, "HEAD").unwrap(),
        setup.ids[2]
    );
}

#[tokio::test]
async fn undo_restores_data_the_run_replaced() {
    let port = healthy_server().await;
    let setup = setup(port, "true");
    backup_at(&setup, &setup.ids[1], "v2-data").await;
    assert_eq!(run(&setup, &to("v2")).await, RunOutcome::Succeeded);
    write_value(&setup.database, "written after the rollback");

    let plan = plan_undo(&setup.spec, &setup.state).unwrap();
    assert_eq!(plan.strategy, Strategy::CodeData);
    assert_eq!(plan.to.commit, setup.ids[2]);
    let (events, _receiver) = mpsc::unbounded_channel();
    let client = crate::engine::health::client();
    let options = RunOptions::default();
    let outcome = execute(&plan, &setup.spec, &setup.state, &client, &events, options).await;

    assert_eq!(outcome, RunOutcome::Succeeded);
    assert_eq!(read_value(&setup.database), "v3-data");
    assert_eq!(
        versions::resolve(&setup.spec.deploy_dir, "HEAD").unwrap(),
        setup.ids[2]
    );
}

#[tokio::test]
async fn data_strategy_keeps_the_code() {
    let port = healthy_server().await;
    let setup = setup(port, "true");
    let backup = backup_at(&setup, &setup.ids[2], "earlier v3-data").await;
    let request = PlanRequest {
        target: None,
        strategy: Some(Strategy::Data),
        backup: Some(backup),
    };
    let outcome = run(&setup, &request).await;

    assert_eq!(outcome, RunOutcome::Succeeded);
    assert_eq!(read_value(&setup.database), "earlier v3-data");
    assert_eq!(
        versions::resolve(&setup.spec.deploy_dir, "HEAD").unwrap(),
        setup.ids[2]
    );
}

#[tokio::test]
async fn missing_backup_at_target_stops_the_plan() {
    let setup = setup(9, "true");
    let error = plan_rollback(&setup.spec, &setup.state, &to("v1")).unwrap_err();

    assert!(matches!(error, RollbackError::NoBackupAt { .. }), "{error}");
    assert_eq!(
        error.to_string(),
        "no backup of `orders` was taken while `v1` was deployed"
    );
    assert!(error.hint("orders").unwrap().contains("--backup ID"));
}
