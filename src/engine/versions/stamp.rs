//! Stamp of a deploy directory: one hash of the `lstat` data of every file
//! and directory that a versions read depends on. Two equal stamps mean
//! that a read would find the same, so a periodic refresh can skip opening
//! the repository with libgit2 (about a thousand allocations a read).
//!
//! The stamp covers the work tree: every entry below the top, except the
//! top `.git`. It covers the entries of `.git` that a read takes: `HEAD`,
//! the configuration, the index, `refs`, `packed-refs`, `shallow`, the
//! exclude file and the object directories' listings. It also covers the
//! user's and the system's git configuration and ignore file in their
//! default places.
//!
//! NOTE: files that the configuration names elsewhere (`core.excludesFile`,
//! `include.path`) and a submodule's git directory under `.git/modules` are
//! not covered. A change there shows once something covered changes.

use std::ffi::CStr;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustix::fs::{AtFlags, CWD, Dir, FileType, Stat};
use rustix::io::Errno;

use super::worktree::open_directory;

/// Entries of `.git` that a read depends on, stamped whether or not they
/// exist. Directories among them are stamped without their contents:
/// their `lstat` data changes when an entry is added or removed.
const GIT_ENTRIES: [&CStr; 12] = [
    c".",
    c"HEAD",
    c"config",
    c"index",
    c"packed-refs",
    c"shallow",
    c"info/exclude",
    c"info/grafts",
    c"objects",
    c"objects/info/alternates",
    c"objects/pack",
    c"refs",
];

/// Entries a stamp visits, in the work tree and in `.git/refs` together,
/// before it gives up and the caller reads the directory instead. A work
/// tree with a large ignored directory (dependencies, build output) costs
/// more to stamp than to read.
pub(super) const MAX_ENTRIES: usize = 20_000;

/// Directory depth beyond which a stamp gives up.
const MAX_DEPTH: usize = 64;

/// Age below which a file's stat data is not trusted. File timestamps
/// advance in ticks (a few milliseconds on Linux, up to 2 s on FAT), so a
/// file written twice within one tick with the same size keeps its stat
/// data. git distrusts such "racily clean" index entries for this reason.
pub(super) const SETTLE_TIME: Duration = Duration::from_secs(2);

/// The reason a directory has no stamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoStamp {
    /// An entry changed within the settle time, or a file could not be
    /// listed or stat'ed. A later stamp may succeed.
    Unsettled,
    /// `.git` is not a directory (a linked work tree or a submodule), or
    /// the walk passed the entry or depth limit. Later stamps are likely to
    /// fail the same way.
    Unsupported,
}

/// Computes the stamp of the deploy directory `dir` as of `now`. An entry
/// changed within `settle` before `now` gives [`NoStamp::Unsettled`], and
/// more than `max_entries` entries give [`NoStamp::Unsupported`].
pub(super) fn stamp(
    dir: &Path,
    now: SystemTime,
    settle: Duration,
    max_entries: usize,
) -> Result<u64, NoStamp> {
    let mut stamper = Stamper {
        hasher: DefaultHasher::new(),
        entries: 0,
        max_entries,
        newest: i128::MIN,
        unsupported: false,
    };
    match stamper.run(dir) {
        Some(()) => {}
        None if stamper.unsupported => return Err(NoStamp::Unsupported),
        None => return Err(NoStamp::Unsettled),
    }
    let settled = now
        .checked_sub(settle)
        .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
        .and_then(|since| i128::try_from(since.as_nanos()).ok());
    match settled {
        Some(settled) if stamper.newest < settled => Ok(stamper.hasher.finish()),
        _ => Err(NoStamp::Unsettled),
    }
}

/// Git configuration and ignore files outside the repository that libgit2
/// reads by default: `$HOME/.gitconfig`, `$XDG_CONFIG_HOME/git/config` and
/// `ignore` (`$HOME/.config/git/` without that variable) and
/// `/etc/gitconfig`.
static USER_FILES: LazyLock<Vec<PathBuf>> = LazyLock::new(|| {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let xdg = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|home| home.join(".config")));
    let mut files = vec![PathBuf::from("/etc/gitconfig")];
    if let Some(home) = home {
        files.push(home.join(".gitconfig"));
    }
    if let Some(xdg) = xdg {
        files.push(xdg.join("git/config"));
        files.push(xdg.join("git/ignore"));
    }
    files
});

/// State of one stamp.
struct Stamper {
    hasher: DefaultHasher,
    /// Entries visited so far.
    entries: usize,
    max_entries: usize,
    /// Newest mtime or ctime seen, in nanoseconds since the Unix epoch.
    newest: i128,
    /// Whether the stamp failed in a way that will recur.
    unsupported: bool,
}

impl Stamper {
    /// Adds everything a read of `dir` depends on. Returns `None` on the
    /// first failure, and sets `unsupported` when that failure will recur.
    fn run(&mut self, dir: &Path) -> Option<()> {
        let top = open_directory(CWD, dir, false)?;
        let top_fd = top.fd().ok()?;
        let git = rustix::fs::statat(top_fd, c".git", AtFlags::SYMLINK_NOFOLLOW).ok()?;
        if FileType::from_raw_mode(git.st_mode) != FileType::Directory {
            self.unsupported = true;
            return None;
        }
        let git_dir = open_directory(top_fd, c".git", true)?;
        let git_fd = git_dir.fd().ok()?;
        if rustix::fs::statat(git_fd, c"commondir", AtFlags::SYMLINK_NOFOLLOW).is_ok() {
            self.unsupported = true;
            return None;
        }
        for name in GIT_ENTRIES {
            self.entry_at(git_fd, name)?;
        }
        let refs = open_directory(git_fd, c"refs", true)?;
        self.tree(refs, 0, false)?;
        self.tree(top, 0, true)?;
        for path in USER_FILES.iter() {
            self.entry_at(CWD, path.as_path())?;
        }
        Some(())
    }

    /// Adds the `lstat` data of `path`, relative to the open directory
    /// `dir`, or a marker when it is missing. Returns `None` on other errors.
    fn entry_at(
        &mut self,
        dir: impl std::os::fd::AsFd,
        path: impl rustix::path::Arg,
    ) -> Option<()> {
        match rustix::fs::statat(dir, path, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => self.add(&stat),
            Err(Errno::NOENT | Errno::NOTDIR) => 0u8.hash(&mut self.hasher),
            Err(_) => return None,
        }
        Some(())
    }

    /// Adds every entry below the open directory `dir`, with its name,
    /// descending into subdirectories. `skip_git` leaves out the `.git`
    /// entry of `dir`.
    fn tree(&mut self, mut dir: Dir, depth: usize, skip_git: bool) -> Option<()> {
        if depth > MAX_DEPTH {
            self.unsupported = true;
            return None;
        }
        while let Some(item) = dir.read() {
            let item = item.ok()?;
            let name = item.file_name();
            let bytes = name.to_bytes();
            if bytes == b"." || bytes == b".." || (skip_git && bytes == b".git") {
                continue;
            }
            self.entries += 1;
            if self.entries > self.max_entries {
                self.unsupported = true;
                return None;
            }
            let fd = dir.fd().ok()?;
            let stat = rustix::fs::statat(fd, name, AtFlags::SYMLINK_NOFOLLOW).ok()?;
            bytes.hash(&mut self.hasher);
            self.add(&stat);
            if FileType::from_raw_mode(stat.st_mode) == FileType::Directory {
                let subdir = open_directory(fd, name, true)?;
                self.tree(subdir, depth + 1, false)?;
                // Marks the end of the subdirectory, so moving a file up
                // a level changes the stamp.
                1u8.hash(&mut self.hasher);
            }
        }
        Some(())
    }

    /// Adds the stat fields that change with a file's content, type, mode,
    /// owner or inode, and tracks the newest time among them.
    fn add(&mut self, stat: &Stat) {
        let fields: [i128; 11] = [
            stat.st_dev.into(),
            stat.st_ino.into(),
            stat.st_mode.into(),
            stat.st_uid.into(),
            stat.st_gid.into(),
            stat.st_size.into(),
            stat.st_mtime.into(),
            stat.st_mtime_nsec.into(),
            stat.st_ctime.into(),
            stat.st_ctime_nsec.into(),
            stat.st_nlink.into(),
        ];
        fields.hash(&mut self.hasher);
        let nanoseconds = |seconds: i128, nanoseconds: i128| seconds * 1_000_000_000 + nanoseconds;
        let modified = nanoseconds(fields[6], fields[7]);
        let changed = nanoseconds(fields[8], fields[9]);
        self.newest = self.newest.max(modified).max(changed);
    }
}

#[cfg(test)]
mod tests {
    use std::fs::{self, File};
    use std::os::unix::fs::PermissionsExt;
    use std::time::Duration;

    use git2::{Repository, RepositoryInitOptions, Signature, Time};
    use tempfile::TempDir;

    use super::*;

    /// Creates a repository on `main` with `app.txt`, `.gitignore` and
    /// `src/lib.txt` committed and tagged `v1`: four work tree entries and
    /// four entries under `.git/refs`.
    fn fixture() -> (TempDir, Repository) {
        let dir = TempDir::new().unwrap();
        let mut options = RepositoryInitOptions::new();
        options.initial_head("main");
        let repository = Repository::init_opts(dir.path(), &options).unwrap();
        write(dir.path(), "app.txt", "v1\n");
        write(dir.path(), ".gitignore", "*.log\n");
        write(dir.path(), "src/lib.txt", "lib\n");
        commit(&repository, "Add app\n");
        tag(&repository, "v1");
        (dir, repository)
    }

    fn write(root: &Path, name: &str, content: &str) {
        let path = root.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }

    /// Stages every file of the work tree and commits it on HEAD.
    fn commit(repository: &Repository, message: &str) {
        let mut index = repository.index().unwrap();
        index
            .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
            .unwrap();
        index.write().unwrap();
        let tree = repository.find_tree(index.write_tree().unwrap()).unwrap();
        let author =
            Signature::new("Ada", "ada@example.com", &Time::new(1_700_000_000, 0)).unwrap();
        let parent = repository
            .head()
            .ok()
            .map(|head| head.peel_to_commit().unwrap());
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        repository
            .commit(Some("HEAD"), &author, &author, message, &tree, &parents)
            .unwrap();
    }

    fn tag(repository: &Repository, name: &str) {
        let head = repository.head().unwrap().peel_to_commit().unwrap();
        repository
            .tag_lightweight(name, head.as_object(), false)
            .unwrap();
    }

    /// Stamps `dir` as if every entry were older than the settle time.
    fn settled(dir: &Path) -> Result<u64, NoStamp> {
        let later = SystemTime::now() + Duration::from_secs(3_600);
        stamp(dir, later, SETTLE_TIME, MAX_ENTRIES)
    }

    /// Sets the mtime of `path` an hour back, so that rewriting it within
    /// the same clock tick still changes its mtime.
    fn age(path: &Path) {
        let past = SystemTime::now() - Duration::from_secs(3_600);
        File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(past)
            .unwrap();
    }

    #[test]
    fn unchanged_directory_keeps_its_stamp() {
        let (dir, _repository) = fixture();
        let first = settled(dir.path());
        assert!(first.is_ok());
        assert_eq!(settled(dir.path()), first);
    }

    #[test]
    fn each_read_input_changes_stamp() {
        let (dir, repository) = fixture();
        let root = dir.path();
        let git = root.join(".git");
        age(&root.join("app.txt"));
        let mut seen = vec![settled(root).unwrap()];
        let mut changed = |what: &str| {
            let stamp = settled(root).unwrap();
            assert!(
                !seen.contains(&stamp),
                "the stamp did not change after {what}"
            );
            seen.push(stamp);
        };

        // The same size, so only the mtime differs.
        write(root, "app.txt", "v2\n");
        changed("rewriting a tracked file");
        fs::set_permissions(root.join("app.txt"), fs::Permissions::from_mode(0o755)).unwrap();
        changed("making a tracked file executable");
        write(root, "src/new.txt", "new\n");
        changed("adding an untracked file");
        fs::remove_file(root.join("src/new.txt")).unwrap();
        changed("removing an untracked file");
        write(root, "debug.log", "ignored\n");
        changed("adding an ignored file");

        let mut index = repository.index().unwrap();
        index.add_path(Path::new("app.txt")).unwrap();
        index.write().unwrap();
        changed("staging a file");
        commit(&repository, "Bump app\n");
        changed("committing");
        tag(&repository, "v2");
        changed("adding a tag");
        let head = repository.refname_to_id("HEAD").unwrap();
        repository.set_head_detached(head).unwrap();
        changed("detaching HEAD");
        fs::write(
            git.join("packed-refs"),
            "# pack-refs with: peeled sorted \n",
        )
        .unwrap();
        changed("writing packed-refs");
        repository
            .config()
            .unwrap()
            .set_bool("core.filemode", false)
            .unwrap();
        changed("setting a configuration value");
        write(&git, "info/exclude", "*.tmp\n");
        changed("writing the exclude file");
    }

    #[test]
    fn recent_change_gives_no_stamp() {
        let (dir, _repository) = fixture();
        let now = SystemTime::now();
        let recent = stamp(dir.path(), now, SETTLE_TIME, MAX_ENTRIES);
        assert_eq!(recent, Err(NoStamp::Unsettled));
        let later = now + SETTLE_TIME + Duration::from_secs(1);
        assert!(stamp(dir.path(), later, SETTLE_TIME, MAX_ENTRIES).is_ok());
    }

    #[test]
    fn stops_past_the_entry_limit() {
        let (dir, _repository) = fixture();
        let later = SystemTime::now() + Duration::from_secs(3_600);
        assert!(stamp(dir.path(), later, SETTLE_TIME, 8).is_ok());
        let over = stamp(dir.path(), later, SETTLE_TIME, 7);
        assert_eq!(over, Err(NoStamp::Unsupported));
    }

    #[test]
    fn needs_a_git_directory() {
        let (dir, _repository) = fixture();
        let plain = TempDir::new().unwrap();
        assert_eq!(settled(plain.path()), Err(NoStamp::Unsettled));
        assert_eq!(
            settled(&plain.path().join("missing")),
            Err(NoStamp::Unsettled)
        );

        // A linked work tree's `.git` is a file that names its git directory.
        let linked = TempDir::new().unwrap();
        let gitdir = format!("gitdir: {}\n", dir.path().join(".git").display());
        write(linked.path(), ".git", &gitdir);
        assert_eq!(settled(linked.path()), Err(NoStamp::Unsupported));

        write(&dir.path().join(".git"), "commondir", "..\n");
        assert_eq!(settled(dir.path()), Err(NoStamp::Unsupported));
    }
}
