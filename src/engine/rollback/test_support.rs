//! Fixtures for the rollback tests: tagged repositories and service specs.

use std::path::Path;
use std::time::Duration;

use crate::config::{HealthSpec, RestartSpec, RollbackPolicy, ServiceSpec, Strategy};

/// Makes a repository on `main` with one tagged commit per tag.
pub fn repo(dir: &Path, tags: &[&str]) -> Vec<String> {
    let repo =
        git2::Repository::init_opts(dir, git2::RepositoryInitOptions::new().initial_head("main"))
            .unwrap();
    let signature = git2::Signature::new(
        "Dev",
        "dev@test.invalid",
        &git2::Time::new(1_700_000_000, 0),
    )
    .unwrap();
    let mut ids: Vec<String> = Vec::new();
    for tag in tags {
        std::fs::write(dir.join("release.txt"), tag).unwrap();
        let mut index = repo.index().unwrap();
        index.add_path(Path::new("release.txt")).unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        index.write().unwrap();
        let parent = ids
            .last()
            .map(|id| repo.find_commit(id.parse().unwrap()).unwrap());
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        let id = repo
            .commit(
                Some("HEAD"),
                &signature,
                &signature,
                &format!("release {tag}"),
                &tree,
                &parents,
            )
            .unwrap();
        repo.tag_lightweight(tag, &repo.find_object(id, None).unwrap(), false)
            .unwrap();
        ids.push(id.to_string());
    }
    ids
}

pub fn spec(dir: &Path) -> ServiceSpec {
    ServiceSpec {
        name: "orders".into(),
        deploy_dir: dir.to_path_buf(),
        branch: Some("main".into()),
        depends_on: Vec::new(),
        health: HealthSpec {
            url: "http://user:secret@127.0.0.1:9/health?token=x"
                .parse()
                .unwrap(),
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            expected_status: Vec::new(),
            failure_threshold: 3,
            success_threshold: 2,
        },
        restart: RestartSpec {
            command: vec!["systemctl".into(), "restart".into(), "orders".into()],
            timeout: Duration::from_secs(30),
            env: Default::default(),
        },
        rollback: RollbackPolicy {
            strategy: Strategy::Code,
            verify_timeout: Duration::from_secs(20),
            settle: Duration::ZERO,
        },
        backup: None,
    }
}
