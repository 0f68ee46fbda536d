//! The demo's git repositories, built with git2: one commit and one
//! annotated tag per release on `main`, with HEAD left on `main` at the
//! newest release and a clean working tree.

use std::path::Path;

use color_eyre::eyre::{Result, WrapErr};
use git2::{Commit, Oid, Repository, RepositoryInitOptions, Signature, Time};

use super::history::{ReleaseSpec, SERVICES, ServiceHistory};
use super::service::RELEASE_FILE;

pub const AUTHOR_NAME: &str = "Demo Dev";
pub const AUTHOR_EMAIL: &str = "dev@demo.invalid";

/// Branch that every demo repository has checked out.
pub const BRANCH: &str = "main";

/// Ignores what a service process could write into its deploy_dir. The demo
/// service writes its pid and log files outside the repository, so the
/// working tree stays clean.
const GITIGNORE: &str = "# Runtime files of the service.\n*.log\n*.pid\n*.tmp\n";

const CHANGELOG_FILE: &str = "CHANGELOG.md";
const HANDLER_FILE: &str = "src/handler.txt";

/// Builds one repository per demo service in `repos_dir`, named after the
/// service. Commit times count back from `anchor` (Unix seconds) by each
/// release's `age_hours`, so the same anchor gives the same commit ids.
pub fn build_all(repos_dir: &Path, anchor: i64) -> Result<()> {
    for history in SERVICES {
        let path = repos_dir.join(history.name);
        build_repository(&path, history, anchor).wrap_err_with(|| {
            format!("failed to build the demo repository `{}`", path.display())
        })?;
    }
    Ok(())
}

fn build_repository(path: &Path, history: &ServiceHistory, anchor: i64) -> Result<()> {
    let mut options = RepositoryInitOptions::new();
    options.initial_head(BRANCH).no_reinit(true);
    let repository = Repository::init_opts(path, &options)?;
    std::fs::create_dir_all(path.join("src"))?;
    std::fs::write(path.join(".gitignore"), GITIGNORE)?;

    let mut parent: Option<Oid> = None;
    for (position, release) in history.releases.iter().enumerate() {
        write_release_files(path, history, position)?;

        let commit_id = commit_release(&repository, release, anchor, parent)?;
        let signature = signature(release, anchor)?;
        let commit = repository.find_object(commit_id, None)?;
        repository.tag(
            release.version,
            &commit,
            &signature,
            &format!("{} {}\n", history.name, release.version),
            false,
        )?;

        parent = Some(commit_id);
    }
    Ok(())
}

/// Writes the files of release number `position` into the working tree.
fn write_release_files(path: &Path, history: &ServiceHistory, position: usize) -> Result<()> {
    let release = &history.releases[position];

    let release_text = format!(
        "# Read by `rewind demo-serve` when it starts.\n{}",
        toml::to_string(&release.release(history))?
    );
    std::fs::write(path.join(RELEASE_FILE), release_text)?;
    std::fs::write(path.join(HANDLER_FILE), release.handler)?;
    std::fs::write(path.join(CHANGELOG_FILE), changelog(history, position))?;
    Ok(())
}

/// Returns the changelog as of release number `position`, newest first.
fn changelog(history: &ServiceHistory, position: usize) -> String {
    let mut text = format!("# Changelog of {}\n", history.name);
    for release in history.releases[..=position].iter().rev() {
        let summary = release
            .subject
            .split_once(": ")
            .map_or(release.subject, |(_, summary)| summary);
        text.push_str(&format!("\n## {}\n\n- {summary}\n", release.version));
    }
    text
}

/// Stages every file of the release and commits it on `main`.
fn commit_release(
    repository: &Repository,
    release: &ReleaseSpec,
    anchor: i64,
    parent: Option<Oid>,
) -> Result<Oid> {
    let mut index = repository.index()?;
    for file in [".gitignore", RELEASE_FILE, CHANGELOG_FILE, HANDLER_FILE] {
        index.add_path(Path::new(file))?;
    }
    index.write()?;
    let tree = repository.find_tree(index.write_tree()?)?;

    let parents: Vec<Commit> = match parent {
        Some(id) => vec![repository.find_commit(id)?],
        None => Vec::new(),
    };
    let parent_refs: Vec<&Commit> = parents.iter().collect();
    let signature = signature(release, anchor)?;
    let message = format!("{}\n", release.subject);
    let id = repository.commit(
        Some("HEAD"),
        &signature,
        &signature,
        &message,
        &tree,
        &parent_refs,
    )?;
    Ok(id)
}

/// Returns the author and committer of `release`, dated `age_hours` before
/// `anchor` in UTC.
fn signature(release: &ReleaseSpec, anchor: i64) -> Result<Signature<'static>> {
    let time = Time::new(anchor - release.age_hours * 3600, 0);
    Ok(Signature::new(AUTHOR_NAME, AUTHOR_EMAIL, &time)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::service::Release;

    const ANCHOR: i64 = 1_800_000_000;

    fn build() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        build_all(root.path(), ANCHOR).unwrap();
        root
    }

    fn tag_names(repository: &Repository) -> Vec<String> {
        let names = repository.tag_names(None).unwrap();
        let mut names: Vec<String> = names
            .iter()
            .map(|name| name.unwrap().unwrap().to_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn repos_have_expected_tags() {
        let root = build();
        let expected = [
            ("gateway", vec!["v3.0.0", "v3.1.0", "v3.1.1", "v3.2.0"]),
            (
                "orders",
                vec!["v1.0.0", "v1.1.0", "v1.2.0", "v1.2.1", "v1.3.0"],
            ),
            (
                "payments",
                vec!["v2.0.0", "v2.1.0", "v2.1.1", "v2.2.0", "v2.3.0"],
            ),
            ("inventory", vec!["v1.0.0", "v1.1.0", "v1.1.1", "v1.2.0"]),
        ];

        for (name, tags) in expected {
            let repository = Repository::open(root.path().join(name)).unwrap();
            assert_eq!(tag_names(&repository), tags, "tags of {name}");
        }
    }

    #[test]
    fn head_is_main_at_newest_tag() {
        let root = build();

        for history in SERVICES {
            let repository = Repository::open(root.path().join(history.name)).unwrap();
            let head = repository.head().unwrap();
            let newest = history.releases.last().unwrap().version;
            let tagged = repository
                .revparse_single(newest)
                .unwrap()
                .peel_to_commit()
                .unwrap();

            assert_eq!(head.name().unwrap(), "refs/heads/main", "{}", history.name);
            assert_eq!(head.target(), Some(tagged.id()), "{}", history.name);
        }
    }

    #[test]
    fn working_trees_are_clean() {
        let root = build();

        for history in SERVICES {
            let repository = Repository::open(root.path().join(history.name)).unwrap();
            let mut options = git2::StatusOptions::new();
            options.include_untracked(true).include_ignored(true);
            let statuses = repository.statuses(Some(&mut options)).unwrap();

            assert_eq!(statuses.len(), 0, "{}", history.name);
        }
    }

    #[test]
    fn history_is_linear_with_tag_per_commit() {
        let root = build();
        let repository = Repository::open(root.path().join("orders")).unwrap();

        let mut walk = repository.revwalk().unwrap();
        walk.push_head().unwrap();
        let commits: Vec<Commit> = walk
            .map(|id| repository.find_commit(id.unwrap()).unwrap())
            .collect();

        let subjects: Vec<&str> = commits
            .iter()
            .map(|commit| commit.summary().unwrap().unwrap())
            .collect();
        assert_eq!(
            subjects,
            [
                "orders: emit order events for the mailer",
                "orders: release reserved stock when payment fails",
                "orders: paginate order history",
                "orders: charge payment after stock is reserved",
                "orders: create orders and reserve stock",
            ]
        );
        for commit in &commits {
            assert!(commit.parent_count() <= 1);
            assert_eq!(commit.author().name().unwrap(), AUTHOR_NAME);
            assert_eq!(commit.author().email().unwrap(), AUTHOR_EMAIL);
        }
        assert_eq!(commits[0].time().seconds(), ANCHOR - 26 * 3600);
    }

    #[test]
    fn commit_times_are_distinct() {
        let mut ages: Vec<i64> = SERVICES
            .iter()
            .flat_map(|history| history.releases.iter().map(|release| release.age_hours))
            .collect();
        let count = ages.len();

        ages.sort();
        ages.dedup();

        assert_eq!(ages.len(), count);
    }

    #[test]
    fn only_newest_payments_is_broken() {
        let root = build();

        for history in SERVICES {
            let release = Release::read(&root.path().join(history.name)).unwrap();
            let expected = if history.name == "payments" { 500 } else { 200 };

            assert_eq!(release.health_status, expected, "{}", history.name);
        }
        for history in SERVICES {
            let newest = history.releases.len() - 1;
            for (position, release) in history.releases.iter().enumerate() {
                let broken = history.name == "payments" && position == newest;
                let expected = if broken { 500 } else { 200 };

                assert_eq!(
                    release.health_status, expected,
                    "{} {}",
                    history.name, release.version
                );
            }
        }
        let payments = Release::read(&root.path().join("payments")).unwrap();
        assert_eq!(
            payments.message,
            "card processor client: nil pointer in retry loop"
        );
    }

    #[test]
    fn build_rejects_existing_repository() {
        let root = build();

        let error = build_all(root.path(), ANCHOR).unwrap_err();

        assert!(format!("{error}").contains("gateway"), "{error}");
    }
}
