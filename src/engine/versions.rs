//! Reads deploy directories with git2 (never the git program): HEAD, the
//! nearest tag, branch or detached state, dirty files and the first-parent
//! history of the deploy branch; checks out a target version.

use std::path::{Path, PathBuf};

use serde::Serialize;

/// What a deploy directory has checked out, and the versions it can go to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionInfo {
    /// Full id of the HEAD commit.
    pub commit: String,
    /// Abbreviated id of the HEAD commit (7 hex digits or longer when ambiguous).
    pub short: String,
    /// `git describe --tags`-style name of HEAD: the tag itself when HEAD is
    /// tagged, `TAG-N-gSHORT` otherwise, `None` when no tag is reachable.
    pub describe: Option<String>,
    /// Branch HEAD is on, `None` when HEAD is detached.
    pub branch: Option<String>,
    /// Branch whose history `history` lists.
    pub history_branch: Option<String>,
    /// Changed, staged and untracked paths (ignored files excluded), relative
    /// to the working tree.
    pub dirty: Vec<String>,
    /// First-parent history of the deploy branch, newest first.
    pub history: Vec<HistoryEntry>,
}

impl VersionInfo {
    /// Returns the name to show for HEAD: its exact tag, else the short id.
    pub fn label(&self) -> String {
        self.history
            .iter()
            .find(|entry| entry.deployed)
            .and_then(|entry| entry.tags.first().cloned())
            .unwrap_or_else(|| self.short.clone())
    }
}

/// One commit of the deploy branch's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryEntry {
    pub commit: String,
    pub short: String,
    /// Tags that point at this commit, sorted.
    pub tags: Vec<String>,
    /// First line of the commit message.
    pub subject: String,
    pub author: String,
    /// Author time, seconds since the Unix epoch.
    pub time: i64,
    /// True for the commit HEAD points at.
    pub deployed: bool,
}

/// Errors of the versions engine.
#[derive(Debug, thiserror::Error)]
pub enum VersionsError {
    #[error("cannot open git working tree `{}`", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: git2::Error,
    },
    #[error("unknown revision `{rev}` in `{}`", path.display())]
    UnknownRevision {
        path: PathBuf,
        rev: String,
        #[source]
        source: git2::Error,
    },
    #[error("branch `{branch}` not found in `{}`", path.display())]
    UnknownBranch { path: PathBuf, branch: String },
    #[error("working tree `{}` has uncommitted changes: {}", path.display(), files.join(", "))]
    Dirty { path: PathBuf, files: Vec<String> },
    #[error("git operation failed in `{}`", path.display())]
    Git {
        path: PathBuf,
        #[source]
        source: git2::Error,
    },
}

/// Result of a checkout: the commit left and the commit now checked out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Checkout {
    pub from: String,
    pub to: String,
}

/// Reads HEAD, describe, branch, dirty files and up to `limit` entries of
/// first-parent history.
pub fn read(dir: &Path, branch: Option<&str>, limit: usize) -> Result<VersionInfo, VersionsError> {
    let _ = (dir, branch, limit);
    todo!()
}

/// Resolves `rev` (full or short commit id, tag, branch, `HEAD~N`) to a full
/// commit id.
pub fn resolve(dir: &Path, rev: &str) -> Result<String, VersionsError> {
    let _ = (dir, rev);
    todo!()
}

/// Lists changed, staged and untracked paths, ignored files excluded.
pub fn dirty_files(dir: &Path) -> Result<Vec<String>, VersionsError> {
    let _ = dir;
    todo!()
}

/// Lists commits reachable from `from` but not from `to`, first-parent only,
/// newest first: the commits a move from `from` to `to` undoes.
pub fn commits_between(
    dir: &Path,
    from: &str,
    to: &str,
) -> Result<Vec<HistoryEntry>, VersionsError> {
    let _ = (dir, from, to);
    todo!()
}

/// Checks out `rev` into the working tree. Refuses a dirty tree with
/// [`VersionsError::Dirty`] and overwrites nothing.
pub fn checkout(dir: &Path, rev: &str, branch: Option<&str>) -> Result<Checkout, VersionsError> {
    let _ = (dir, rev, branch);
    todo!()
}
