//! Reads deploy directories with git2, never the git program: HEAD, the
//! nearest tag, branch or detached state, dirty files and the first-parent
//! history of the deploy branch. Also checks out a target version.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use git2::build::CheckoutBuilder;
use git2::{BranchType, Commit, ErrorCode, ObjectType, Oid, Repository, StatusOptions, StatusShow};
use serde::{Deserialize, Serialize};

mod index_file;
mod stamp;
mod worktree;

pub use stamp::NoStamp;

/// State of a deploy directory: the checked-out version and the versions it can go to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkout {
    pub from: String,
    pub to: String,
}

/// Reads HEAD, describe, branch, dirty files and up to `limit` entries of
/// first-parent history.
///
/// The history follows `branch` when given, else the branch HEAD is on. With a
/// detached HEAD it follows the first local branch that contains HEAD
/// (`main`, then `master`, then by name), so versions newer than HEAD stay
/// listed after a rollback. Without such a branch it starts at HEAD.
pub fn read(dir: &Path, branch: Option<&str>, limit: usize) -> Result<VersionInfo, VersionsError> {
    read_with_history(dir, branch, Some(limit), true)
}

/// Reads HEAD, describe and history as [`read`] does, and leaves the dirty
/// files empty. The versions benchmark times it beside `git rev-parse`,
/// `describe` and `log`.
#[doc(hidden)]
pub fn read_without_status(
    dir: &Path,
    branch: Option<&str>,
    limit: usize,
) -> Result<VersionInfo, VersionsError> {
    read_with_history(dir, branch, Some(limit), false)
}

/// Reads what [`read`] reads, except that the history contains the entry of
/// HEAD only: what a list of services shows, without walking the history.
pub fn read_deployed(dir: &Path, branch: Option<&str>) -> Result<VersionInfo, VersionsError> {
    read_with_history(dir, branch, None, true)
}

/// Reads a deploy directory with up to `limit` entries of history, or with
/// HEAD's entry alone when `limit` is `None`, and its dirty files when
/// `status` is set.
fn read_with_history(
    dir: &Path,
    branch: Option<&str>,
    limit: Option<usize>,
    status: bool,
) -> Result<VersionInfo, VersionsError> {
    let repository = open(dir)?;
    let head = head_commit(&repository, dir)?;
    let current_branch = current_branch(&repository, dir)?;

    let (history_branch, tip) = match branch {
        Some(name) => (Some(name.to_owned()), branch_tip(&repository, dir, name)?),
        None => match &current_branch {
            Some(name) => (Some(name.clone()), head.id()),
            None => match branch_containing(&repository, dir, head.id())? {
                Some((name, tip)) => (Some(name), tip),
                None => (None, head.id()),
            },
        },
    };

    let tags = tag_map(&repository, dir)?;
    let history = match limit {
        Some(limit) => first_parent_history(&repository, dir, tip, limit, &tags, head.id())?,
        None => vec![history_entry(&head, dir, &tags, head.id())?],
    };

    Ok(VersionInfo {
        commit: head.id().to_string(),
        short: short_id(&head, dir)?,
        describe: describe(&repository, dir, &head, &tags)?,
        branch: current_branch,
        history_branch,
        dirty: if status {
            statuses(&repository, dir)?
        } else {
            Vec::new()
        },
        history,
    })
}

/// Computes a stamp of everything a read of `dir` depends on: the `lstat`
/// data of its work tree, of the parts of `.git` that a read uses and of
/// the user's git configuration. Equal stamps mean a read would return
/// the same, so a periodic refresh can skip it.
///
/// Returns [`NoStamp::Unsettled`] when an entry changed less than two
/// seconds ago (it may change again without its stat data changing) or a
/// file cannot be listed. Returns [`NoStamp::Unsupported`] when the work
/// tree and `.git/refs` contain more than 20,000 entries or `.git` is not
/// a directory.
pub fn stamp(dir: &Path) -> Result<u64, NoStamp> {
    stamp::stamp(
        dir,
        std::time::SystemTime::now(),
        STAMP_SETTLE_TIME,
        stamp::MAX_ENTRIES,
    )
}

/// Age below which [`stamp`] does not trust an entry's stat data.
pub const STAMP_SETTLE_TIME: std::time::Duration = stamp::SETTLE_TIME;

/// Resolves `rev` (full or short commit id, tag, branch, `HEAD~N`) to a full
/// commit id.
pub fn resolve(dir: &Path, rev: &str) -> Result<String, VersionsError> {
    let repository = open(dir)?;
    let commit = find_commit(&repository, dir, rev)?;
    Ok(commit.id().to_string())
}

/// Returns the full id of the commit HEAD points at, from the references
/// alone. Unlike `resolve(dir, "HEAD")` it opens no object database and
/// reads no object.
pub fn head(dir: &Path) -> Result<String, VersionsError> {
    let repository = open(dir)?;
    let id = repository.refname_to_id("HEAD").map_err(git_error(dir))?;
    Ok(id.to_string())
}

/// Lists changed, staged and untracked paths, ignored files excluded.
pub fn dirty_files(dir: &Path) -> Result<Vec<String>, VersionsError> {
    let repository = open(dir)?;
    statuses(&repository, dir)
}

/// Lists commits reachable from `from` but not from `to`, first-parent only,
/// newest first: the commits a move from `from` to `to` undoes.
pub fn commits_between(
    dir: &Path,
    from: &str,
    to: &str,
) -> Result<Vec<HistoryEntry>, VersionsError> {
    let repository = open(dir)?;
    let from = find_commit(&repository, dir, from)?;
    let to = find_commit(&repository, dir, to)?;
    let head = head_commit(&repository, dir)?;

    // The full `to..from` set decides membership, so a commit that `to`
    // reaches only through a merge's second parent still counts as reachable.
    let mut walk = repository.revwalk().map_err(git_error(dir))?;
    walk.push(from.id()).map_err(git_error(dir))?;
    walk.hide(to.id()).map_err(git_error(dir))?;
    let unreachable = walk
        .collect::<Result<HashSet<Oid>, _>>()
        .map_err(git_error(dir))?;

    let tags = tag_map(&repository, dir)?;
    let mut entries = Vec::new();
    let mut current = Some(from);
    while let Some(commit) = current {
        // Every ancestor of a commit that `to` reaches is reachable too, so
        // the walk stops at the first such commit.
        if !unreachable.contains(&commit.id()) {
            break;
        }
        entries.push(history_entry(&commit, dir, &tags, head.id())?);
        current = first_parent(&commit, dir)?;
    }
    Ok(entries)
}

/// Checks out `rev` into the working tree. Refuses a dirty tree with
/// [`VersionsError::Dirty`] and overwrites nothing.
///
/// HEAD attaches to `branch` (else the branch HEAD is on, else a local branch
/// at the target, `main` and `master` first) when that branch's tip is the
/// target, and detaches at the target otherwise. When the target already is
/// HEAD, nothing changes, dirty or not.
pub fn checkout(dir: &Path, rev: &str, branch: Option<&str>) -> Result<Checkout, VersionsError> {
    let repository = open(dir)?;
    let target = find_commit(&repository, dir, rev)?;
    let head = head_commit(&repository, dir)?;
    let result = Checkout {
        from: head.id().to_string(),
        to: target.id().to_string(),
    };
    if target.id() == head.id() {
        return Ok(result);
    }

    let files = statuses(&repository, dir)?;
    if !files.is_empty() {
        return Err(VersionsError::Dirty {
            path: dir.to_path_buf(),
            files,
        });
    }

    let attach_to = branch_to_attach(&repository, dir, branch, target.id())?;

    // The tree goes first, so a failed tree checkout leaves HEAD unchanged.
    repository
        .checkout_tree(target.as_object(), Some(CheckoutBuilder::new().safe()))
        .map_err(git_error(dir))?;
    crate::engine::failpoint::hit("checkout-tree-written");

    match attach_to {
        Some(name) => repository.set_head(&format!("refs/heads/{name}")),
        None => repository.set_head_detached(target.id()),
    }
    .map_err(git_error(dir))?;

    Ok(result)
}

/// Lists uncommitted paths whose content matches the file of neither
/// `first` nor `second`: changes that an interrupted checkout between the
/// two versions cannot have made.
pub fn foreign_changes(
    dir: &Path,
    first: &str,
    second: &str,
) -> Result<Vec<String>, VersionsError> {
    let repository = open(dir)?;
    let trees = [
        find_commit(&repository, dir, first)?
            .tree()
            .map_err(git_error(dir))?,
        find_commit(&repository, dir, second)?
            .tree()
            .map_err(git_error(dir))?,
    ];
    let mut foreign = Vec::new();
    for path in statuses(&repository, dir)? {
        let on_disk = std::fs::read(dir.join(&path)).ok();
        let matches = |tree: &git2::Tree| -> bool {
            let in_tree = tree
                .get_path(Path::new(&path))
                .ok()
                .and_then(|entry| entry.to_object(&repository).ok())
                .and_then(|object| object.into_blob().ok())
                .map(|blob| blob.content().to_vec());
            in_tree == on_disk
        };
        if !trees.iter().any(matches) {
            foreign.push(path);
        }
    }
    Ok(foreign)
}

/// Checks out `rev`, overwriting files that differ from it. Only for
/// recovering an interrupted checkout, after [`foreign_changes`] found
/// no change that the checkout did not make itself.
pub fn force_checkout(
    dir: &Path,
    rev: &str,
    branch: Option<&str>,
) -> Result<Checkout, VersionsError> {
    let repository = open(dir)?;
    let target = find_commit(&repository, dir, rev)?;
    let head = head_commit(&repository, dir)?;
    let attach_to = branch_to_attach(&repository, dir, branch, target.id())?;
    repository
        .checkout_tree(
            target.as_object(),
            Some(CheckoutBuilder::new().force().remove_untracked(true)),
        )
        .map_err(git_error(dir))?;
    match attach_to {
        Some(name) => repository.set_head(&format!("refs/heads/{name}")),
        None => repository.set_head_detached(target.id()),
    }
    .map_err(git_error(dir))?;
    Ok(Checkout {
        from: head.id().to_string(),
        to: target.id().to_string(),
    })
}

impl VersionsError {
    /// Returns a next step that fixes the error, when there is one.
    pub fn hint(&self) -> Option<String> {
        match self {
            VersionsError::Open { path, .. } => Some(format!(
                "check that `{}` is a git clone with a working tree",
                path.display()
            )),
            VersionsError::UnknownRevision { .. } => {
                Some("list versions with `rewind versions`".to_owned())
            }
            VersionsError::UnknownBranch { .. } => {
                Some("set the deploy branch to an existing local branch".to_owned())
            }
            VersionsError::Dirty { .. } => {
                Some("commit, stash or discard the changes, then retry".to_owned())
            }
            VersionsError::Git { .. } => None,
        }
    }
}

/// Opens the non-bare repository whose working tree is `dir`.
fn open(dir: &Path) -> Result<Repository, VersionsError> {
    // libgit2 re-hashes every object it reads to check its id, which git
    // does not: 16 % of the instructions of a history read in callgrind.
    // zlib still checks each object's checksum as it inflates it. The
    // setting is process-wide, so it is set once.
    static NO_HASH_CHECK: std::sync::Once = std::sync::Once::new();
    NO_HASH_CHECK.call_once(|| git2::opts::strict_hash_verification(false));
    let open_error = |source| VersionsError::Open {
        path: dir.to_path_buf(),
        source,
    };
    let repository = Repository::open(dir).map_err(open_error)?;
    if repository.is_bare() {
        return Err(open_error(git2::Error::from_str(
            "repository is bare, so it has no working tree",
        )));
    }
    Ok(repository)
}

fn git_error(dir: &Path) -> impl Fn(git2::Error) -> VersionsError + '_ {
    move |source| VersionsError::Git {
        path: dir.to_path_buf(),
        source,
    }
}

fn head_commit<'r>(repository: &'r Repository, dir: &Path) -> Result<Commit<'r>, VersionsError> {
    repository
        .head()
        .and_then(|head| head.peel_to_commit())
        .map_err(git_error(dir))
}

/// Returns the short name of the branch HEAD is on, `None` when detached.
fn current_branch(repository: &Repository, dir: &Path) -> Result<Option<String>, VersionsError> {
    let head = repository.head().map_err(git_error(dir))?;
    if !head.is_branch() {
        return Ok(None);
    }
    Ok(head.shorthand().ok().map(str::to_owned))
}

/// Resolves `rev` to a commit. Revisions that are missing, malformed,
/// ambiguous or not commit-ish are [`VersionsError::UnknownRevision`].
fn find_commit<'r>(
    repository: &'r Repository,
    dir: &Path,
    rev: &str,
) -> Result<Commit<'r>, VersionsError> {
    let unknown = |source: git2::Error| match source.code() {
        ErrorCode::NotFound | ErrorCode::InvalidSpec | ErrorCode::Ambiguous | ErrorCode::Peel => {
            VersionsError::UnknownRevision {
                path: dir.to_path_buf(),
                rev: rev.to_owned(),
                source,
            }
        }
        _ => git_error(dir)(source),
    };
    let object = repository.revparse_single(rev).map_err(unknown)?;

    // Peeling fails mostly for trees and blobs, which are no versions, so
    // every peel failure is reported as an unknown revision.
    object
        .peel_to_commit()
        .map_err(|source| VersionsError::UnknownRevision {
            path: dir.to_path_buf(),
            rev: rev.to_owned(),
            source,
        })
}

/// Returns the tip of local branch `name`.
fn branch_tip(repository: &Repository, dir: &Path, name: &str) -> Result<Oid, VersionsError> {
    let branch = match repository.find_branch(name, BranchType::Local) {
        Ok(branch) => branch,
        Err(error) if matches!(error.code(), ErrorCode::NotFound | ErrorCode::InvalidSpec) => {
            return Err(VersionsError::UnknownBranch {
                path: dir.to_path_buf(),
                branch: name.to_owned(),
            });
        }
        Err(error) => return Err(git_error(dir)(error)),
    };
    branch
        .get()
        .peel_to_commit()
        .map(|commit| commit.id())
        .map_err(git_error(dir))
}

/// Lists local branches with their tips: `main`, then `master`, then the rest
/// by name. Branches with names that are not UTF-8 are skipped.
fn local_branches(
    repository: &Repository,
    dir: &Path,
) -> Result<Vec<(String, Oid)>, VersionsError> {
    let mut branches = Vec::new();
    for item in repository
        .branches(Some(BranchType::Local))
        .map_err(git_error(dir))?
    {
        let (branch, _) = item.map_err(git_error(dir))?;
        let Some(name) = branch.name().map_err(git_error(dir))? else {
            continue;
        };
        let tip = branch.get().peel_to_commit().map_err(git_error(dir))?;
        branches.push((name.to_owned(), tip.id()));
    }

    let rank = |name: &str| match name {
        "main" => 0,
        "master" => 1,
        _ => 2,
    };
    branches.sort_by(|(left, _), (right, _)| {
        (rank(left), left.as_str()).cmp(&(rank(right), right.as_str()))
    });
    Ok(branches)
}

/// Finds the first local branch whose tip is `commit` or a descendant of it.
fn branch_containing(
    repository: &Repository,
    dir: &Path,
    commit: Oid,
) -> Result<Option<(String, Oid)>, VersionsError> {
    for (name, tip) in local_branches(repository, dir)? {
        let contains = tip == commit
            || repository
                .graph_descendant_of(tip, commit)
                .map_err(git_error(dir))?;
        if contains {
            return Ok(Some((name, tip)));
        }
    }
    Ok(None)
}

/// Picks the branch HEAD should attach to after a checkout of `target`:
/// `requested`, else the current branch, else any local branch, but only a
/// branch whose tip is `target`.
fn branch_to_attach(
    repository: &Repository,
    dir: &Path,
    requested: Option<&str>,
    target: Oid,
) -> Result<Option<String>, VersionsError> {
    let named = match requested {
        Some(name) => Some(name.to_owned()),
        None => current_branch(repository, dir)?,
    };
    let branches = local_branches(repository, dir)?;
    let at_target = |name: &str| {
        branches
            .iter()
            .any(|(branch, tip)| branch == name && *tip == target)
    };

    match named {
        Some(name) if at_target(&name) => Ok(Some(name)),
        Some(_) => Ok(None),
        None => Ok(branches
            .iter()
            .find(|(_, tip)| *tip == target)
            .map(|(name, _)| name.clone())),
    }
}

/// Maps each tagged commit to its tag names, sorted. Annotated tags are
/// peeled, and tags of trees or blobs are skipped.
fn tag_map(
    repository: &Repository,
    dir: &Path,
) -> Result<HashMap<Oid, Vec<String>>, VersionsError> {
    let odb = repository.odb().map_err(git_error(dir))?;
    let mut tags: HashMap<Oid, Vec<String>> = HashMap::new();
    for item in repository
        .references_glob("refs/tags/*")
        .map_err(git_error(dir))?
    {
        let reference = item.map_err(git_error(dir))?;
        let Ok(name) = reference.shorthand() else {
            continue;
        };
        // Peeling reads the whole object behind every tag, which was an
        // eighth of a `read`. packed-refs stores the commit behind an
        // annotated tag, and a header read distinguishes a commit from a tag object.
        let direct = reference.target_peel().or_else(|| reference.target());
        let header = direct.map(|id| (id, odb.read_header(id).map(|(_, kind)| kind)));
        let commit = match header {
            Some((id, Ok(ObjectType::Commit))) => id,
            Some((_, Ok(ObjectType::Tag))) | None => match reference.peel(ObjectType::Commit) {
                Ok(commit) => commit.id(),
                Err(_) => continue,
            },
            // A tagged tree or blob, or a missing object.
            Some(_) => continue,
        };
        tags.entry(commit).or_default().push(name.to_owned());
    }
    for names in tags.values_mut() {
        names.sort();
    }
    Ok(tags)
}

/// Returns the abbreviated id: 7 hex digits, more when 7 are ambiguous.
fn short_id(commit: &Commit, dir: &Path) -> Result<String, VersionsError> {
    let buffer = commit.as_object().short_id().map_err(git_error(dir))?;
    Ok(String::from_utf8_lossy(&buffer).into_owned())
}

/// Tags `git describe` weighs before it settles on the nearest one.
const DESCRIBE_CANDIDATES: usize = 10;

/// A tagged commit found by [`describe`], with the number of walked commits
/// that it does not reach.
struct Candidate {
    commit: Oid,
    depth: usize,
    flag: u32,
}

/// Describes `head` like `git describe --tags`: its tag when it has one,
/// else `TAG-N-gSHORT` for the nearest tagged ancestor, `None` when no tag
/// reaches it. `tags` maps tagged commits to their tag names.
///
/// This is git's algorithm (builtin/describe.c in git 2.47). It walks from
/// HEAD newest commit first and takes up to ten tagged commits as
/// candidates. For each it counts the walked commits that it does not
/// reach, and it picks the lowest count, the first found on a tie. The walk
/// stops as soon as every queued commit is reached by the best candidate,
/// because no later commit can change the choice or the count. libgit2
/// 1.9's describe gives the same names but walks the whole history, 46
/// million instructions for 1,000 commits (callgrind).
fn describe(
    repository: &Repository,
    dir: &Path,
    head: &Commit,
    tags: &HashMap<Oid, Vec<String>>,
) -> Result<Option<String>, VersionsError> {
    const SEEN: u32 = 1;
    if let Some(names) = tags.get(&head.id()) {
        return Ok(Some(describe_name(repository, names)));
    }
    if tags.is_empty() {
        return Ok(None);
    }

    // Newest commit time first; among equal times, the commit queued first.
    let mut queue: BinaryHeap<(i64, Reverse<usize>, Oid)> = BinaryHeap::new();
    let mut flags: HashMap<Oid, u32> = HashMap::from([(head.id(), SEEN)]);
    let mut queued = 0;
    queue.push((head.time().seconds(), Reverse(queued), head.id()));
    let mut candidates: Vec<Candidate> = Vec::new();
    let mut seen = 0;

    while let Some((_, _, id)) = queue.pop() {
        let mut commit_flags = flags.get(&id).copied().unwrap_or(SEEN);
        seen += 1;
        if tags.contains_key(&id) && candidates.len() < DESCRIBE_CANDIDATES {
            let flag = 1 << (candidates.len() + 1);
            candidates.push(Candidate {
                commit: id,
                depth: seen - 1,
                flag,
            });
            commit_flags |= flag;
            flags.insert(id, commit_flags);
        }
        for candidate in &mut candidates {
            if commit_flags & candidate.flag == 0 {
                candidate.depth += 1;
            }
        }

        let commit = repository.find_commit(id).map_err(git_error(dir))?;
        for parent in commit.parents() {
            let parent_flags = flags.entry(parent.id()).or_insert(0);
            if *parent_flags & SEEN == 0 {
                queued += 1;
                queue.push((parent.time().seconds(), Reverse(queued), parent.id()));
            }
            *parent_flags |= commit_flags;
        }

        // The lowest depth wins and the first found breaks a tie, which
        // `min_by_key` keeps because it returns the first minimum.
        let best = candidates.iter().min_by_key(|candidate| candidate.depth);
        if let Some(best) = best {
            let settled = queue
                .iter()
                .all(|(_, _, queued_id)| flags.get(queued_id).is_some_and(|f| f & best.flag != 0));
            if settled {
                break;
            }
        }
    }

    let Some(best) = candidates.iter().min_by_key(|candidate| candidate.depth) else {
        return Ok(None);
    };
    let name = describe_name(repository, &tags[&best.commit]);
    Ok(Some(format!(
        "{name}-{}-g{}",
        best.depth,
        short_id(head, dir)?
    )))
}

/// Picks the tag `git describe` names for a commit with `names` (sorted):
/// annotated tags before lightweight ones, the newest tagger date among
/// annotated tags, else the first name.
fn describe_name(repository: &Repository, names: &[String]) -> String {
    let rank = |name: &String| {
        let tag = repository
            .find_reference(&format!("refs/tags/{name}"))
            .ok()
            .and_then(|reference| reference.peel_to_tag().ok());
        match tag {
            Some(tag) => (1, tag.tagger().map_or(i64::MIN, |who| who.when().seconds())),
            None => (0, i64::MIN),
        }
    };
    let mut best = &names[0];
    let mut best_rank = rank(best);
    for name in &names[1..] {
        let name_rank = rank(name);
        if name_rank > best_rank {
            best = name;
            best_rank = name_rank;
        }
    }
    best.clone()
}

/// Returns the first parent, `None` for a root commit or a shallow boundary.
fn first_parent<'r>(commit: &Commit<'r>, dir: &Path) -> Result<Option<Commit<'r>>, VersionsError> {
    if commit.parent_count() == 0 {
        return Ok(None);
    }
    commit.parent(0).map(Some).map_err(git_error(dir))
}

/// Lists up to `limit` commits of the first-parent chain from `tip`.
fn first_parent_history(
    repository: &Repository,
    dir: &Path,
    tip: Oid,
    limit: usize,
    tags: &HashMap<Oid, Vec<String>>,
    head: Oid,
) -> Result<Vec<HistoryEntry>, VersionsError> {
    let mut entries = Vec::new();
    let mut current = Some(repository.find_commit(tip).map_err(git_error(dir))?);
    while let Some(commit) = current {
        if entries.len() == limit {
            break;
        }
        entries.push(history_entry(&commit, dir, tags, head)?);
        current = first_parent(&commit, dir)?;
    }
    // The dashboard keeps one history per service for as long as it runs,
    // and growing the vector left up to 14 unused slots in each.
    entries.shrink_to_fit();
    Ok(entries)
}

fn history_entry(
    commit: &Commit,
    dir: &Path,
    tags: &HashMap<Oid, Vec<String>>,
    head: Oid,
) -> Result<HistoryEntry, VersionsError> {
    let message = String::from_utf8_lossy(commit.message_bytes());
    let subject = message.lines().next().unwrap_or_default().trim_end();
    let author = commit.author();

    Ok(HistoryEntry {
        commit: commit.id().to_string(),
        short: short_id(commit, dir)?,
        tags: tags.get(&commit.id()).cloned().unwrap_or_default(),
        subject: subject.to_owned(),
        author: String::from_utf8_lossy(author.name_bytes()).into_owned(),
        time: author.when().seconds(),
        deployed: commit.id() == head,
    })
}

/// Tells whether the index equals HEAD's tree, from the tree cache
/// that git stores in the index. Returns `false` when the cache does not
/// cover the whole index, as after `git add`, and writes nothing.
fn index_matches_head(repository: &Repository) -> bool {
    let Ok(head_tree) = repository.head().and_then(|head| head.peel_to_tree()) else {
        return false;
    };
    let Ok(mut index) = repository.index() else {
        return false;
    };
    // An object database without backends rejects every write. Writing the
    // index's tree into it returns the cached root tree id when the cache is
    // complete (libgit2 1.9, tree.c) and fails when a tree would be written.
    let scratch = git2::Odb::new().and_then(Repository::from_odb);
    let Ok(scratch) = scratch else {
        return false;
    };
    index
        .write_tree_to(&scratch)
        .is_ok_and(|tree| tree == head_tree.id())
}

/// Lists changed, staged and untracked paths, sorted. A staged rename lists
/// only its new path.
///
/// The quick check reads the index file itself and returns the same list
/// when stat data decides every file. Otherwise libgit2 scans the tree.
fn statuses(repository: &Repository, dir: &Path) -> Result<Vec<String>, VersionsError> {
    match worktree::quick_statuses(repository) {
        Some(paths) => Ok(paths),
        None => libgit2_statuses(repository, dir),
    }
}

/// Lists what [`statuses`] lists with one libgit2 status scan.
fn libgit2_statuses(repository: &Repository, dir: &Path) -> Result<Vec<String>, VersionsError> {
    let mut options = StatusOptions::new();
    options
        .include_untracked(true)
        .recurse_untracked_dirs(true)
        .include_ignored(false)
        .renames_head_to_index(true);
    // Comparing HEAD's tree with the index reads every tree of HEAD and took
    // half of the status time for 2,000 files. It finds nothing to report
    // when the index equals HEAD's tree.
    if index_matches_head(repository) {
        options.show(StatusShow::Workdir);
    }
    let statuses = repository
        .statuses(Some(&mut options))
        .map_err(git_error(dir))?;

    let mut paths = Vec::with_capacity(statuses.len());
    for entry in statuses.iter() {
        // The index-to-workdir delta has the newest path, but it is absent
        // for changes that exist only in the index.
        let delta = entry.index_to_workdir().or_else(|| entry.head_to_index());
        let path = delta
            .and_then(|delta| {
                delta
                    .new_file()
                    .path_bytes()
                    .or_else(|| delta.old_file().path_bytes())
            })
            .unwrap_or_else(|| entry.path_bytes());
        paths.push(String::from_utf8_lossy(path).into_owned());
    }
    paths.sort();
    paths.dedup();
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use std::fs;

    use git2::{RepositoryInitOptions, Signature, Time};
    use tempfile::TempDir;

    use super::*;

    /// Author time of the first commit. Each later commit is one hour newer.
    const START: i64 = 1_700_000_000;
    const HOUR: i64 = 3_600;

    /// A repository on `main` with this history, HEAD at `main`:
    ///
    /// ```text
    /// c1 (v0.1.0, annotated) - c2 (v0.1.1 + release/0.1.1) - c3 (v0.2.0)
    ///   - c4 (merge of `feature`) - c5
    /// ```
    ///
    /// `feature` is one commit on top of c3 and the second parent of c4.
    struct Fixture {
        dir: TempDir,
        repository: Repository,
        main: Vec<Oid>,
        feature: Oid,
    }

    impl Fixture {
        fn path(&self) -> &Path {
            self.dir.path()
        }

        fn read_file(&self, name: &str) -> String {
            fs::read_to_string(self.path().join(name)).unwrap()
        }

        fn write_file(&self, name: &str, content: &str) {
            write_file(self.path(), name, content);
        }

        fn id(&self, index: usize) -> String {
            self.main[index].to_string()
        }
    }

    fn signature(seconds: i64) -> Signature<'static> {
        Signature::new("Ada Lovelace", "ada@example.com", &Time::new(seconds, 0)).unwrap()
    }

    fn write_file(root: &Path, name: &str, content: &str) {
        let path = root.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }

    fn init(dir: &Path) -> Repository {
        let mut options = RepositoryInitOptions::new();
        options.initial_head("main");
        Repository::init_opts(dir, &options).unwrap()
    }

    /// Writes and stages `files`, then commits the index with `parents`.
    /// Moves HEAD only when `move_head` is set.
    fn commit(
        repository: &Repository,
        files: &[(&str, &str)],
        message: &str,
        seconds: i64,
        parents: &[Oid],
        move_head: bool,
    ) -> Oid {
        let root = repository.workdir().unwrap();
        let mut index = repository.index().unwrap();
        for (name, content) in files {
            write_file(root, name, content);
            index.add_path(Path::new(name)).unwrap();
        }
        index.write().unwrap();

        let tree = repository.find_tree(index.write_tree().unwrap()).unwrap();
        let parents: Vec<Commit> = parents
            .iter()
            .map(|id| repository.find_commit(*id).unwrap())
            .collect();
        let parents: Vec<&Commit> = parents.iter().collect();
        let author = signature(seconds);
        let update_ref = move_head.then_some("HEAD");
        repository
            .commit(update_ref, &author, &author, message, &tree, &parents)
            .unwrap()
    }

    fn tag_annotated(repository: &Repository, name: &str, id: Oid) {
        let object = repository.find_object(id, None).unwrap();
        let message = format!("Release {name}");
        repository
            .tag(name, &object, &signature(START), &message, false)
            .unwrap();
    }

    fn tag_lightweight(repository: &Repository, name: &str, id: Oid) {
        let object = repository.find_object(id, None).unwrap();
        repository.tag_lightweight(name, &object, false).unwrap();
    }

    fn fixture() -> Fixture {
        let dir = TempDir::new().unwrap();
        let repository = init(dir.path());

        let files = [("app.txt", "v1\n"), (".gitignore", "*.log\n")];
        let c1 = commit(
            &repository,
            &files,
            "Add app\n\nFirst version.\n",
            START,
            &[],
            true,
        );
        tag_annotated(&repository, "v0.1.0", c1);

        let c2 = commit(
            &repository,
            &[("app.txt", "v1.1\n")],
            "Fix typo\n",
            START + HOUR,
            &[c1],
            true,
        );
        tag_lightweight(&repository, "v0.1.1", c2);
        tag_annotated(&repository, "release/0.1.1", c2);

        let c3 = commit(
            &repository,
            &[("app.txt", "v2\n")],
            "Add feature flag\n",
            START + 2 * HOUR,
            &[c2],
            true,
        );
        tag_annotated(&repository, "v0.2.0", c3);

        let feature = commit(
            &repository,
            &[("feature.txt", "on\n")],
            "Add feature file\n",
            START + 3 * HOUR,
            &[c3],
            false,
        );
        let feature_commit = repository.find_commit(feature).unwrap();
        repository
            .branch("feature", &feature_commit, false)
            .unwrap();

        let c4 = commit(
            &repository,
            &[("app.txt", "v2.1\n")],
            "Merge feature\n",
            START + 4 * HOUR,
            &[c3, feature],
            true,
        );
        let c5 = commit(
            &repository,
            &[("app.txt", "v3\n")],
            "Bump config\n",
            START + 5 * HOUR,
            &[c4],
            true,
        );

        drop(feature_commit);
        Fixture {
            dir,
            repository,
            main: vec![c1, c2, c3, c4, c5],
            feature,
        }
    }

    fn short(id: Oid) -> String {
        id.to_string()[..7].to_owned()
    }

    fn subjects(entries: &[HistoryEntry]) -> Vec<&str> {
        entries.iter().map(|entry| entry.subject.as_str()).collect()
    }

    #[test]
    fn history_lists_first_parent_newest_first() {
        let fixture = fixture();

        let info = read(fixture.path(), None, 10).unwrap();

        let commits: Vec<String> = info
            .history
            .iter()
            .map(|entry| entry.commit.clone())
            .collect();
        let expected: Vec<String> = (0..5).rev().map(|index| fixture.id(index)).collect();
        assert_eq!(commits, expected);
        assert_eq!(
            subjects(&info.history),
            [
                "Bump config",
                "Merge feature",
                "Add feature flag",
                "Fix typo",
                "Add app"
            ]
        );
    }

    #[test]
    fn history_entries_carry_tags_author_time() {
        let fixture = fixture();

        let info = read(fixture.path(), None, 10).unwrap();

        let tags: Vec<Vec<String>> = info
            .history
            .iter()
            .map(|entry| entry.tags.clone())
            .collect();
        let expected: Vec<Vec<String>> = vec![
            vec![],
            vec![],
            vec!["v0.2.0".to_owned()],
            vec!["release/0.1.1".to_owned(), "v0.1.1".to_owned()],
            vec!["v0.1.0".to_owned()],
        ];
        assert_eq!(tags, expected);

        let times: Vec<i64> = info.history.iter().map(|entry| entry.time).collect();
        // Hour 3 is the `feature` commit, which is off the first-parent chain.
        let expected_times: Vec<i64> = [5, 4, 2, 1, 0]
            .iter()
            .map(|hour| START + hour * HOUR)
            .collect();
        assert_eq!(times, expected_times);

        for entry in &info.history {
            assert_eq!(entry.author, "Ada Lovelace");
            assert_eq!(entry.short, entry.commit[..7]);
        }
    }

    #[test]
    fn history_marks_only_head_deployed() {
        let fixture = fixture();

        let info = read(fixture.path(), None, 10).unwrap();

        let deployed: Vec<bool> = info.history.iter().map(|entry| entry.deployed).collect();
        assert_eq!(deployed, [true, false, false, false, false]);
    }

    #[test]
    fn history_honours_limit() {
        let fixture = fixture();

        let two = read(fixture.path(), None, 2).unwrap();
        let none = read(fixture.path(), None, 0).unwrap();

        assert_eq!(subjects(&two.history), ["Bump config", "Merge feature"]);
        assert!(none.history.is_empty());
    }

    #[test]
    fn read_reports_head_and_branch() {
        let fixture = fixture();

        let info = read(fixture.path(), None, 10).unwrap();

        assert_eq!(info.commit, fixture.id(4));
        assert_eq!(info.short, short(fixture.main[4]));
        assert_eq!(info.branch.as_deref(), Some("main"));
        assert_eq!(info.history_branch.as_deref(), Some("main"));
        assert!(info.dirty.is_empty());
        assert_eq!(info.label(), short(fixture.main[4]));
    }

    #[test]
    fn read_follows_given_branch() {
        let fixture = fixture();

        let info = read(fixture.path(), Some("feature"), 10).unwrap();

        assert_eq!(info.history_branch.as_deref(), Some("feature"));
        assert_eq!(info.branch.as_deref(), Some("main"));
        assert_eq!(info.history[0].commit, fixture.feature.to_string());
        assert_eq!(
            subjects(&info.history),
            [
                "Add feature file",
                "Add feature flag",
                "Fix typo",
                "Add app"
            ]
        );
        assert!(info.history.iter().all(|entry| !entry.deployed));
    }

    #[test]
    fn read_rejects_unknown_branch() {
        let fixture = fixture();

        let error = read(fixture.path(), Some("release"), 10).unwrap_err();

        let VersionsError::UnknownBranch { path, branch } = &error else {
            panic!("expected UnknownBranch, got {error:?}");
        };
        assert_eq!(path, fixture.path());
        assert_eq!(branch, "release");
        assert_eq!(
            error.to_string(),
            format!(
                "branch `release` not found in `{}`",
                fixture.path().display()
            )
        );
    }

    #[test]
    fn read_rejects_bare_and_missing_repositories() {
        let dir = TempDir::new().unwrap();
        let bare = dir.path().join("bare.git");
        Repository::init_bare(&bare).unwrap();
        let missing = dir.path().join("missing");

        for path in [bare, missing] {
            let error = read(&path, None, 10).unwrap_err();
            assert!(
                matches!(&error, VersionsError::Open { path: reported, .. } if *reported == path),
                "{error:?}"
            );
        }
    }

    #[test]
    fn describe_names_exact_tag() {
        let fixture = fixture();
        checkout(fixture.path(), "v0.2.0", None).unwrap();

        let info = read(fixture.path(), None, 10).unwrap();

        assert_eq!(info.describe.as_deref(), Some("v0.2.0"));
        assert_eq!(info.label(), "v0.2.0");
    }

    #[test]
    fn describe_counts_commits_since_tag() {
        let fixture = fixture();

        let info = read(fixture.path(), None, 10).unwrap();

        // c4, c5 and the merged `feature` commit are not reachable from v0.2.0.
        let expected = format!("v0.2.0-3-g{}", short(fixture.main[4]));
        assert_eq!(info.describe, Some(expected));
    }

    #[test]
    fn describe_is_none_without_tags() {
        let dir = TempDir::new().unwrap();
        let repository = init(dir.path());
        commit(
            &repository,
            &[("app.txt", "v1\n")],
            "Add app\n",
            START,
            &[],
            true,
        );

        let info = read(dir.path(), None, 10).unwrap();

        assert_eq!(info.describe, None);
        assert_eq!(subjects(&info.history), ["Add app"]);
        assert!(info.history[0].tags.is_empty());
    }

    #[test]
    fn describe_is_none_when_tags_unreachable() {
        let fixture = fixture();
        tag_annotated(&fixture.repository, "feature-1", fixture.feature);
        let root = commit(&fixture.repository, &[], "Start over\n", START, &[], false);
        fixture.repository.set_head_detached(root).unwrap();

        let info = read(fixture.path(), None, 10).unwrap();

        assert_eq!(info.describe, None);
    }

    #[test]
    fn checkout_older_tag_detaches_and_keeps_history() {
        let fixture = fixture();

        let moved = checkout(fixture.path(), "v0.2.0", None).unwrap();

        assert_eq!(
            moved,
            Checkout {
                from: fixture.id(4),
                to: fixture.id(2),
            }
        );
        assert!(fixture.repository.head_detached().unwrap());
        assert_eq!(fixture.read_file("app.txt"), "v2\n");
        assert!(!fixture.path().join("feature.txt").exists());

        let info = read(fixture.path(), None, 10).unwrap();
        assert_eq!(info.commit, fixture.id(2));
        assert_eq!(info.branch, None);
        assert_eq!(info.history_branch.as_deref(), Some("main"));
        assert_eq!(info.history.len(), 5);
        let deployed: Vec<bool> = info.history.iter().map(|entry| entry.deployed).collect();
        assert_eq!(deployed, [false, false, true, false, false]);
        assert!(info.dirty.is_empty());
    }

    #[test]
    fn checkout_given_branch_not_at_target_detaches() {
        let fixture = fixture();

        checkout(fixture.path(), "HEAD~1", Some("main")).unwrap();

        assert!(fixture.repository.head_detached().unwrap());
        assert_eq!(fixture.read_file("app.txt"), "v2.1\n");
        let head = fixture.repository.head().unwrap().target().unwrap();
        assert_eq!(head, fixture.main[3]);
    }

    #[test]
    fn checkout_tip_reattaches_branch() {
        let fixture = fixture();
        checkout(fixture.path(), "v0.1.0", None).unwrap();

        let moved = checkout(fixture.path(), &fixture.id(4), None).unwrap();

        assert_eq!(moved.from, fixture.id(0));
        assert_eq!(moved.to, fixture.id(4));
        assert!(!fixture.repository.head_detached().unwrap());
        let info = read(fixture.path(), None, 10).unwrap();
        assert_eq!(info.branch.as_deref(), Some("main"));
        assert_eq!(fixture.read_file("app.txt"), "v3\n");
        assert_eq!(fixture.read_file("feature.txt"), "on\n");
    }

    #[test]
    fn checkout_tip_attaches_given_branch() {
        let fixture = fixture();
        checkout(fixture.path(), "v0.2.0", None).unwrap();

        checkout(fixture.path(), "feature", Some("feature")).unwrap();

        let info = read(fixture.path(), None, 10).unwrap();
        assert_eq!(info.branch.as_deref(), Some("feature"));
        assert_eq!(info.commit, fixture.feature.to_string());
        assert_eq!(fixture.read_file("app.txt"), "v2\n");
    }

    #[test]
    fn checkout_head_changes_nothing() {
        let fixture = fixture();
        fixture.write_file("app.txt", "local edit\n");

        let moved = checkout(fixture.path(), "main", None).unwrap();

        assert_eq!(moved.from, fixture.id(4));
        assert_eq!(moved.to, fixture.id(4));
        assert_eq!(fixture.read_file("app.txt"), "local edit\n");
        assert!(!fixture.repository.head_detached().unwrap());
    }

    #[test]
    fn checkout_rejects_modified_file() {
        let fixture = fixture();
        fixture.write_file("app.txt", "local edit\n");

        let error = checkout(fixture.path(), "v0.1.0", None).unwrap_err();

        let VersionsError::Dirty { path, files } = &error else {
            panic!("expected Dirty, got {error:?}");
        };
        assert_eq!(path, fixture.path());
        assert_eq!(files, &["app.txt"]);
        assert_eq!(fixture.read_file("app.txt"), "local edit\n");
        assert_eq!(fixture.read_file("feature.txt"), "on\n");
        assert!(!fixture.repository.head_detached().unwrap());
        let head = fixture.repository.head().unwrap().target().unwrap();
        assert_eq!(head, fixture.main[4]);
        assert_eq!(
            error.hint().as_deref(),
            Some("commit, stash or discard the changes, then retry")
        );
    }

    #[test]
    fn checkout_rejects_untracked_file() {
        let fixture = fixture();
        fixture.write_file("notes/todo/first.txt", "draft\n");
        fixture.write_file("server.log", "ignored\n");

        let error = checkout(fixture.path(), "v0.1.0", None).unwrap_err();

        let VersionsError::Dirty { files, .. } = &error else {
            panic!("expected Dirty, got {error:?}");
        };
        assert_eq!(files, &["notes/todo/first.txt"]);
        assert_eq!(fixture.read_file("notes/todo/first.txt"), "draft\n");
        assert_eq!(fixture.read_file("app.txt"), "v3\n");
        let head = fixture.repository.head().unwrap().target().unwrap();
        assert_eq!(head, fixture.main[4]);
    }

    #[test]
    fn checkout_ignores_ignored_files() {
        let fixture = fixture();
        fixture.write_file("server.log", "kept\n");
        fixture.write_file("logs/old/boot.log", "kept\n");

        assert_eq!(dirty_files(fixture.path()).unwrap(), Vec::<String>::new());
        checkout(fixture.path(), "v0.1.0", None).unwrap();

        assert_eq!(fixture.read_file("app.txt"), "v1\n");
        assert_eq!(fixture.read_file("server.log"), "kept\n");
        assert_eq!(fixture.read_file("logs/old/boot.log"), "kept\n");
    }

    #[test]
    fn checkout_rejects_unknown_revision() {
        let fixture = fixture();

        let error = checkout(fixture.path(), "v9.9.9", None).unwrap_err();

        assert!(
            matches!(&error, VersionsError::UnknownRevision { rev, .. } if rev == "v9.9.9"),
            "{error:?}"
        );
        let head = fixture.repository.head().unwrap().target().unwrap();
        assert_eq!(head, fixture.main[4]);
    }

    #[test]
    fn dirty_files_lists_sorted_paths() {
        let fixture = fixture();
        fixture.write_file("app.txt", "local edit\n");
        fixture.write_file("zeta.txt", "untracked\n");
        fixture.write_file("alpha.txt", "staged\n");
        let mut index = fixture.repository.index().unwrap();
        index.add_path(Path::new("alpha.txt")).unwrap();
        index.write().unwrap();
        fs::remove_file(fixture.path().join("feature.txt")).unwrap();

        let files = dirty_files(fixture.path()).unwrap();

        assert_eq!(files, ["alpha.txt", "app.txt", "feature.txt", "zeta.txt"]);
    }

    #[test]
    fn index_matches_head_until_staged() {
        let fixture = fixture();
        let clean = index_matches_head(&fixture.repository);
        fixture.write_file("alpha.txt", "staged\n");
        let mut index = fixture.repository.index().unwrap();
        index.add_path(Path::new("alpha.txt")).unwrap();
        index.write().unwrap();

        let staged = index_matches_head(&fixture.repository);

        assert!(clean, "a freshly committed index matches HEAD");
        assert!(!staged, "a staged file does not match HEAD");
        assert_eq!(dirty_files(fixture.path()).unwrap(), ["alpha.txt"]);
    }

    #[test]
    fn dirty_files_lists_rename_new_path() {
        let fixture = fixture();
        fs::rename(
            fixture.path().join("feature.txt"),
            fixture.path().join("flags.txt"),
        )
        .unwrap();
        let mut index = fixture.repository.index().unwrap();
        index.remove_path(Path::new("feature.txt")).unwrap();
        index.add_path(Path::new("flags.txt")).unwrap();
        index.write().unwrap();

        let files = dirty_files(fixture.path()).unwrap();

        assert_eq!(files, ["flags.txt"]);
    }

    #[test]
    fn resolve_accepts_tags_branches_and_ancestry() {
        let fixture = fixture();
        let short_c2 = short(fixture.main[1]);
        let cases = [
            ("HEAD", fixture.id(4)),
            ("HEAD~1", fixture.id(3)),
            ("HEAD~2", fixture.id(2)),
            ("v0.1.0", fixture.id(0)),
            ("v0.1.1", fixture.id(1)),
            ("feature", fixture.feature.to_string()),
            (short_c2.as_str(), fixture.id(1)),
        ];

        for (rev, expected) in cases {
            assert_eq!(resolve(fixture.path(), rev).unwrap(), expected, "{rev}");
        }
    }

    #[test]
    fn resolve_rejects_unknown_revision() {
        let fixture = fixture();

        for rev in ["v9.9.9", "HEAD~9", "", "HEAD^{tree}"] {
            let error = resolve(fixture.path(), rev).unwrap_err();
            let VersionsError::UnknownRevision {
                path,
                rev: reported,
                ..
            } = &error
            else {
                panic!("expected UnknownRevision for `{rev}`, got {error:?}");
            };
            assert_eq!(path, fixture.path());
            assert_eq!(reported, rev);
        }

        let error = resolve(fixture.path(), "v9.9.9").unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "unknown revision `v9.9.9` in `{}`",
                fixture.path().display()
            )
        );
        assert_eq!(
            error.hint().as_deref(),
            Some("list versions with `rewind versions`")
        );
    }

    #[test]
    fn commits_between_lists_undone_commits() {
        let fixture = fixture();

        let undone = commits_between(fixture.path(), "main", "v0.1.1").unwrap();

        let commits: Vec<String> = undone.iter().map(|entry| entry.commit.clone()).collect();
        assert_eq!(commits, [fixture.id(4), fixture.id(3), fixture.id(2)]);
        assert_eq!(undone[2].tags, ["v0.2.0"]);
        let deployed: Vec<bool> = undone.iter().map(|entry| entry.deployed).collect();
        assert_eq!(deployed, [true, false, false]);
    }

    #[test]
    fn commits_between_is_empty_when_rolling_forward() {
        let fixture = fixture();

        let undone = commits_between(fixture.path(), "v0.1.1", "main").unwrap();

        assert!(undone.is_empty());
    }

    #[test]
    fn commits_between_skips_commits_merged_into_target() {
        let fixture = fixture();

        // `feature` is reachable from c4 only through c4's second parent.
        let undone = commits_between(fixture.path(), "feature", "HEAD~1").unwrap();

        assert!(undone.is_empty());
    }

    #[test]
    fn detached_history_prefers_main_branch() {
        let fixture = fixture();
        let tip = fixture.repository.find_commit(fixture.main[4]).unwrap();
        fixture.repository.branch("alpha", &tip, false).unwrap();
        checkout(fixture.path(), "v0.1.1", None).unwrap();

        let info = read(fixture.path(), None, 10).unwrap();

        assert_eq!(info.history_branch.as_deref(), Some("main"));
        assert_eq!(info.history.len(), 5);
    }

    #[test]
    fn detached_history_without_branch_starts_at_head() {
        let fixture = fixture();
        fixture
            .repository
            .set_head_detached(fixture.main[4])
            .unwrap();
        let hotfix = commit(
            &fixture.repository,
            &[("app.txt", "v3.1\n")],
            "Hotfix\n",
            START + 6 * HOUR,
            &[fixture.main[4]],
            true,
        );

        let info = read(fixture.path(), None, 3).unwrap();

        assert_eq!(info.commit, hotfix.to_string());
        assert_eq!(info.branch, None);
        assert_eq!(info.history_branch, None);
        assert_eq!(
            subjects(&info.history),
            ["Hotfix", "Bump config", "Merge feature"]
        );
        assert!(info.history[0].deployed);
    }

    #[test]
    fn head_follows_checkouts_and_detached_heads() {
        let fixture = fixture();
        assert_eq!(head(fixture.path()).unwrap(), fixture.id(4));

        checkout(fixture.path(), "v0.1.1", None).unwrap();

        assert_eq!(head(fixture.path()).unwrap(), fixture.id(1));
        assert_eq!(
            head(fixture.path()).unwrap(),
            resolve(fixture.path(), "HEAD").unwrap()
        );
    }

    #[test]
    fn head_of_an_unborn_branch_is_an_error() {
        let dir = TempDir::new().unwrap();
        init(dir.path());

        let error = head(dir.path()).unwrap_err();

        assert!(
            matches!(error, VersionsError::Git { .. }),
            "unexpected error: {error:?}"
        );
    }

    #[test]
    fn tags_from_packed_refs_and_odd_targets() {
        let fixture = fixture();
        let repository = &fixture.repository;
        let annotated = repository
            .find_reference("refs/tags/v0.2.0")
            .unwrap()
            .target()
            .unwrap();
        let git_dir = fixture.path().join(".git");
        fs::remove_file(git_dir.join("refs/tags/v0.2.0")).unwrap();
        let packed = format!(
            "# pack-refs with: peeled fully-peeled sorted \n\
             {} refs/tags/packed-light\n\
             {annotated} refs/tags/v0.2.0\n^{}\n",
            fixture.main[1], fixture.main[2]
        );
        fs::write(git_dir.join("packed-refs"), packed).unwrap();
        let tree = repository.find_commit(fixture.main[0]).unwrap().tree_id();
        tag_lightweight(repository, "tree-tag", tree);
        let nested = repository.find_object(annotated, None).unwrap();
        repository
            .tag("nested", &nested, &signature(START), "Tag of a tag", false)
            .unwrap();

        let info = read(fixture.path(), None, 10).unwrap();

        let tags_of = |index: usize| -> Vec<&str> {
            let id = fixture.id(index);
            let entry = info
                .history
                .iter()
                .find(|entry| entry.commit == id)
                .unwrap();
            entry.tags.iter().map(String::as_str).collect()
        };
        assert_eq!(tags_of(2), ["nested", "v0.2.0"]);
        assert_eq!(tags_of(1), ["packed-light", "release/0.1.1", "v0.1.1"]);
        assert_eq!(tags_of(0), ["v0.1.0"]);
        let all: Vec<&String> = info.history.iter().flat_map(|entry| &entry.tags).collect();
        assert!(!all.iter().any(|tag| *tag == "tree-tag"), "tags: {all:?}");
    }

    #[test]
    fn corrupt_commit_fails_the_read() {
        let fixture = fixture();
        let head = fixture.repository.head().unwrap().target().unwrap();
        let hex = head.to_string();
        let object = fixture
            .path()
            .join(".git/objects")
            .join(&hex[..2])
            .join(&hex[2..]);
        let mut bytes = fs::read(&object).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        fs::set_permissions(&object, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
        fs::write(&object, bytes).unwrap();

        let error = read(fixture.path(), None, 10).unwrap_err();
        let source = std::error::Error::source(&error).unwrap().to_string();
        // zlib rejects the damaged stream as the commit inflates.
        assert_eq!(
            source,
            "the reference 'refs/heads/main' cannot be peeled - Cannot retrieve reference \
             target; class=Invalid (3)"
        );
    }

    #[test]
    fn read_without_status_omits_dirty_files() {
        let fixture = fixture();
        fixture.write_file("notes.txt", "untracked\n");

        let mut full = read(fixture.path(), None, 10).unwrap();
        let refs = read_without_status(fixture.path(), None, 10).unwrap();

        assert_eq!(full.dirty, ["notes.txt"]);
        assert!(refs.dirty.is_empty());
        full.dirty.clear();
        assert_eq!(refs, full);
    }

    #[test]
    fn read_deployed_lists_head_alone() {
        let fixture = fixture();
        checkout(fixture.path(), "v0.1.1", None).unwrap();

        let info = read_deployed(fixture.path(), None).unwrap();
        let full = read(fixture.path(), None, 10).unwrap();

        assert_eq!(info.history.len(), 1);
        assert_eq!(info.history[0].commit, fixture.id(1));
        assert!(info.history[0].deployed);
        assert_eq!(info.history[0].tags, ["release/0.1.1", "v0.1.1"]);
        assert_eq!(info.label(), full.label());
        assert_eq!(info.history_branch.as_deref(), Some("main"));
        assert_eq!(
            full.history.iter().find(|entry| entry.deployed),
            Some(&info.history[0])
        );
    }
}
