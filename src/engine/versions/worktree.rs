//! Quick status check: lists the dirty paths of a working tree from the
//! index file, `lstat` and `readdir`, without libgit2's index load.
//!
//! libgit2 1.9 verifies the index checksum with collision-detecting SHA-1
//! and checks every index path against Windows and macOS name rules on each
//! load. In callgrind, on a clone of the `benches/versions.rs` repository
//! (2,000 files), those were about 40 % and 16 % of the user-space
//! instructions of a status check.
//!
//! This module returns what `git_status_list_new` would return (with
//! untracked files, recursing into untracked directories, without ignored
//! files) when the index equals HEAD's tree and stat data alone decides
//! every file. In all other cases it returns `None` and the caller asks
//! libgit2. The rules follow libgit2 1.9's `maybe_modified`
//! (`diff_generate.c`) and its work tree iterator (`iterator.c`).

use std::ffi::CStr;
use std::fs::File;
use std::io::Read;
use std::ops::Range;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use git2::{ErrorCode, Repository};
use rustix::fs::{AtFlags, CWD, Dir, FileType, Mode, OFlags, Stat};

use super::index_file::{
    self, IndexEntry, IndexFile, IndexTime, MODE_REGULAR, MODE_SYMLINK, MODE_TYPE_MASK,
};

/// Directory depth beyond which the walk returns `None`. libgit2 fails
/// beyond 100 levels.
const MAX_DEPTH: usize = 64;

/// Untracked paths whose ignore rules the walk checks before it returns
/// `None`. Each check (`git_ignore_path_is_ignored`) rebuilds the rule
/// stack and stats every `.gitignore` up the path, where libgit2's status
/// scan loads each directory's rules once, so many untracked files are
/// cheaper in libgit2.
const MAX_IGNORE_CHECKS: usize = 256;

/// Length of an absolute path at which libgit2 fails: it builds the full
/// path of every file, and the kernel rejects paths of `PATH_MAX` bytes
/// with their terminating NUL. This walk opens each file relative to its
/// directory, so it would still reach such a file, and returns `None`
/// instead.
const PATH_MAX: usize = 4096;

/// Largest index file this module reads. A bigger one, real or corrupt,
/// goes to libgit2.
const MAX_INDEX_BYTES: u64 = 256 << 20;

/// Lists the paths that [`super::libgit2_statuses`] would list, sorted and
/// deduplicated, or returns `None` when this module cannot decide them.
///
/// It decides only when the index is a plain SHA-1 index whose cache tree
/// equals HEAD's tree, so nothing is staged. Each tracked file must be
/// missing, of another type or mode, of another size, or else match its
/// cached stat data exactly and be older than the index file. Other cases
/// make libgit2 hash the file, and this function returns `None` for them.
///
/// NOTE: the index checksum is not verified, so a corrupt index that still
/// parses gets a list here where libgit2 fails with an error.
pub(super) fn quick_statuses(repository: &Repository) -> Option<Vec<String>> {
    // git reads the index that this variable names, and libgit2 reads
    // `<git dir>/index`. libgit2 alone decides that case, as before.
    if std::env::var_os("GIT_INDEX_FILE").is_some() {
        return None;
    }
    let workdir = repository.workdir()?;
    let settings = Settings::read(repository)?;
    let (index, index_mtime) = read_index(&repository.path().join("index"))?;

    let head_tree = repository.head().ok()?.peel_to_commit().ok()?.tree_id();
    let root = index.root_tree.as_ref()?;
    if root.entry_count != index.entries.len() || root.id[..] != *head_tree.as_bytes() {
        return None;
    }

    let workdir_length = workdir.as_os_str().len();
    let longest = index.entries.iter().map(|entry| index.path(entry).len());
    if workdir_length + longest.max().unwrap_or(0) >= PATH_MAX {
        return None;
    }

    let mut walk = Walk {
        repository,
        index: &index,
        settings,
        index_mtime,
        workdir_length,
        ignore_checks: 0,
        dirty: Vec::new(),
    };
    let top = open_directory(CWD, workdir, false)?;
    walk.visit(top, "", 0..index.entries.len(), 0)?;

    let mut dirty = walk.dirty;
    dirty.sort_unstable();
    dirty.dedup();
    Some(dirty)
}

/// Configuration that changes libgit2's status result.
#[derive(Debug, Clone, Copy)]
struct Settings {
    /// `core.filemode`: the executable bit counts as a change.
    filemode: bool,
    /// `core.trustctime`: a changed ctime makes libgit2 hash the file.
    trust_ctime: bool,
}

impl Settings {
    /// Reads the settings, or returns `None` when a value is invalid or
    /// selects behaviour this module does not implement: `core.symlinks =
    /// false`, `core.ignorecase`, `core.precomposeunicode` or an object
    /// format other than SHA-1.
    ///
    /// libgit2 does not read `core.checkstat` or `core.fsmonitor`, so they
    /// change nothing here either.
    fn read(repository: &Repository) -> Option<Settings> {
        // A snapshot reads the files once. Reads of the live configuration
        // check every file for changes on each call.
        let config = repository.config().ok()?.snapshot().ok()?;
        let flag = |name: &str, default: bool| match config.get_bool(name) {
            Ok(value) => Some(value),
            Err(error) if error.code() == ErrorCode::NotFound => Some(default),
            // libgit2's status check treats an invalid `core.filemode`,
            // `core.trustctime` or `core.symlinks` as false.
            Err(_) => None,
        };
        if !flag("core.symlinks", true)?
            || flag("core.ignorecase", false)?
            || flag("core.precomposeunicode", false)?
        {
            return None;
        }
        match config.get_string("extensions.objectformat") {
            Ok(format) if format.eq_ignore_ascii_case("sha1") => {}
            Err(error) if error.code() == ErrorCode::NotFound => {}
            _ => return None,
        }
        Some(Settings {
            filemode: flag("core.filemode", true)?,
            trust_ctime: flag("core.trustctime", true)?,
        })
    }
}

/// Reads and parses the index file and returns it with the file's mtime in
/// seconds and nanoseconds.
fn read_index(path: &Path) -> Option<(IndexFile, (i64, i64))> {
    let file = File::open(path).ok()?;
    let metadata = file.metadata().ok()?;
    if metadata.len() > MAX_INDEX_BYTES {
        return None;
    }
    let mut data = Vec::with_capacity(usize::try_from(metadata.len()).ok()?);
    // The file may grow after the stat, so the read stops past the limit.
    file.take(MAX_INDEX_BYTES + 1).read_to_end(&mut data).ok()?;
    if data.len() as u64 > MAX_INDEX_BYTES {
        return None;
    }
    let index = index_file::parse(&data)?;
    Some((index, (metadata.mtime(), metadata.mtime_nsec())))
}

/// A name that the index lists in a tracked directory.
struct Child<'a> {
    name: &'a str,
    kind: ChildKind,
    /// `true` once the directory listing contained the name.
    seen: bool,
}

enum ChildKind {
    /// A tracked file: its position in the index entries.
    File(usize),
    /// A directory that contains tracked files: their positions.
    Directory(Range<usize>),
}

/// State of one walk of the work tree.
struct Walk<'a> {
    repository: &'a Repository,
    index: &'a IndexFile,
    settings: Settings,
    /// mtime of the index file as libgit2 keeps it: seconds, nanoseconds.
    index_mtime: (i64, i64),
    /// Length of the work tree's path, which ends in `/`.
    workdir_length: usize,
    /// Ignore checks made so far, at most [`MAX_IGNORE_CHECKS`].
    ignore_checks: usize,
    dirty: Vec<String>,
}

impl<'a> Walk<'a> {
    /// Visits the open directory `dir` at `directory` (empty for the top,
    /// else ending in `/`), whose tracked files are `tracked`: compares each
    /// tracked file, lists missing and untracked ones and recurses into
    /// subdirectories.
    fn visit(
        &mut self,
        mut dir: Dir,
        directory: &str,
        tracked: Range<usize>,
        depth: usize,
    ) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        let index = self.index;
        let mut children = children(index, directory.len(), tracked)?;

        while let Some(item) = dir.read() {
            let item = item.ok()?;
            let raw_name = item.file_name();
            let name = raw_name.to_str().ok()?;
            if name == "." || name == ".." {
                continue;
            }
            // libgit2 skips `.git` in any case and at any depth. Below the
            // top it is a nested repository or a stray file, both left to
            // libgit2.
            if name.eq_ignore_ascii_case(".git") {
                if depth == 0 {
                    continue;
                }
                return None;
            }
            let fd = dir.fd().ok()?;
            let mut stat = None;
            let mut file_type = item.file_type();
            if file_type == FileType::Unknown {
                // Some file systems leave the type out of the listing.
                let status = stat_at(fd, raw_name)?;
                file_type = FileType::from_raw_mode(status.st_mode);
                stat = Some(status);
            }

            let Ok(position) = children.binary_search_by(|child| child.name.cmp(name)) else {
                self.visit_untracked(fd, raw_name, &join(directory, name), file_type, depth)?;
                continue;
            };
            let child = &mut children[position];
            child.seen = true;
            match &child.kind {
                ChildKind::File(entry) => {
                    if !matches!(file_type, FileType::RegularFile | FileType::Symlink) {
                        return None;
                    }
                    let entry = &index.entries[*entry];
                    let stat = match stat {
                        Some(stat) => stat,
                        None => stat_at(fd, raw_name)?,
                    };
                    if self.tracked_file_changed(entry, &stat)? {
                        self.dirty.push(index.path(entry).to_owned());
                    }
                }
                ChildKind::Directory(range) => {
                    if file_type != FileType::Directory {
                        return None;
                    }
                    let range = range.clone();
                    let subdir = open_directory(fd, raw_name, true)?;
                    let mut subdirectory = join(directory, name);
                    subdirectory.push('/');
                    self.visit(subdir, &subdirectory, range, depth + 1)?;
                }
            }
        }

        for child in children.iter().filter(|child| !child.seen) {
            let missing = match &child.kind {
                ChildKind::File(entry) => *entry..*entry + 1,
                ChildKind::Directory(range) => range.clone(),
            };
            let paths = index.entries[missing].iter().map(|entry| index.path(entry));
            self.dirty.extend(paths.map(str::to_owned));
        }
        Some(())
    }

    /// Lists an untracked file unless it is ignored, and recurses into an
    /// untracked directory unless it is ignored, as libgit2 does with
    /// `recurse_untracked_dirs`. An ignored directory is skipped whole, even
    /// when a negated pattern matches a file inside it. `name` is the entry
    /// in the open directory `parent`, and `path` its path in the work tree.
    fn visit_untracked(
        &mut self,
        parent: BorrowedFd,
        name: &CStr,
        path: &str,
        file_type: FileType,
        depth: usize,
    ) -> Option<()> {
        // libgit2 fails on the full path, and its trailing slash for a
        // directory.
        if self.workdir_length + path.len() + 1 >= PATH_MAX {
            return None;
        }
        match file_type {
            FileType::Directory => {
                // A trailing slash lets directory-only patterns (`logs/`)
                // match.
                let directory = format!("{path}/");
                if !self.is_ignored(&directory)? {
                    let dir = open_directory(parent, name, true)?;
                    self.visit(dir, &directory, 0..0, depth + 1)?;
                }
            }
            FileType::RegularFile | FileType::Symlink => {
                // libgit2 leaves out a file it cannot stat, such as one in a
                // directory that can be read but not searched, so that case
                // goes to libgit2.
                stat_at(parent, name)?;
                if !self.is_ignored(path)? {
                    self.dirty.push(path.to_owned());
                }
            }
            // libgit2 skips sockets, FIFOs and devices, even tracked ones.
            _ => return None,
        }
        Some(())
    }

    /// Tells whether the ignore rules match `path`, or returns `None` when
    /// the check fails or the walk made [`MAX_IGNORE_CHECKS`] checks.
    fn is_ignored(&mut self, path: &str) -> Option<bool> {
        if self.ignore_checks == MAX_IGNORE_CHECKS {
            return None;
        }
        self.ignore_checks += 1;
        self.repository.is_path_ignored(path).ok()
    }

    /// Tells whether libgit2 reports `entry` modified from stat data alone,
    /// or returns `None` when libgit2 would hash the file to decide.
    fn tracked_file_changed(&self, entry: &IndexEntry, stat: &Stat) -> Option<bool> {
        let mut disk_mode = canonical_mode(low_bits(stat.st_mode))?;
        if !self.settings.filemode && (disk_mode & 0o777) != (entry.mode & 0o777) {
            disk_mode = (disk_mode & !0o777) | (entry.mode & 0o777);
        }
        if disk_mode & MODE_TYPE_MASK != entry.mode & MODE_TYPE_MASK {
            return Some(true);
        }

        // libgit2 and git store sizes truncated to 32 bits.
        let disk_size = low_bits(stat.st_size);
        if disk_mode != entry.mode || disk_size != entry.size {
            // An index size of 0 can mark an unknown size (git writes it
            // for racily clean files), so libgit2 hashes the file then.
            if entry.size == 0 && disk_size > 0 && disk_mode == entry.mode {
                return None;
            }
            return Some(true);
        }

        let mtime = IndexTime {
            seconds: low_bits(stat.st_mtime),
            nanoseconds: low_bits(stat.st_mtime_nsec),
        };
        let ctime = IndexTime {
            seconds: low_bits(stat.st_ctime),
            nanoseconds: low_bits(stat.st_ctime_nsec),
        };
        let stat_matches = entry.mtime == mtime
            && (!self.settings.trust_ctime || entry.ctime == ctime)
            && entry.ino == low_bits(stat.st_ino)
            && entry.uid == low_bits(stat.st_uid)
            && entry.gid == low_bits(stat.st_gid);
        if !stat_matches || self.is_racy(entry.mtime) {
            return None;
        }
        Some(false)
    }

    /// Tells whether a file modified at `mtime` may have changed in the
    /// same clock tick as the index was written ("racily clean"), as
    /// libgit2's `git_index_entry_newer_than_index` does with its 32-bit
    /// signed seconds.
    fn is_racy(&self, mtime: IndexTime) -> bool {
        let (index_seconds, index_nanoseconds) = self.index_mtime;
        let index_seconds = index_seconds as i32;
        let entry_seconds = mtime.seconds as i32;
        index_seconds < entry_seconds
            || (index_seconds == entry_seconds && index_nanoseconds as u32 <= mtime.nanoseconds)
    }
}

/// Opens a directory for listing, relative to the open directory `parent`
/// (or to the current directory for an absolute `path`). With
/// `no_follow`, a symbolic link in place of the directory fails.
pub(super) fn open_directory(
    parent: impl AsFd,
    path: impl rustix::path::Arg,
    no_follow: bool,
) -> Option<Dir> {
    let mut flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    if no_follow {
        flags |= OFlags::NOFOLLOW;
    }
    let fd = rustix::fs::openat(parent, path, flags, Mode::empty()).ok()?;
    Dir::new(fd).ok()
}

/// Returns the `lstat` data of `name` in the open directory `dir`.
fn stat_at(dir: BorrowedFd, name: &CStr) -> Option<Stat> {
    rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).ok()
}

/// Returns the low 32 bits of a stat field, as the index stores it. The
/// field types differ between platforms.
fn low_bits(value: impl Into<i128>) -> u32 {
    value.into() as u32
}

/// Joins a directory path (empty or ending in `/`) and a name.
fn join(directory: &str, name: &str) -> String {
    let mut path = String::with_capacity(directory.len() + name.len() + 1);
    path.push_str(directory);
    path.push_str(name);
    path
}

/// Returns the names that the index lists in one directory, sorted by name:
/// tracked files and directories that contain tracked files.
/// `index.entries[range]` are the entries under the directory, whose path
/// takes `prefix_length` bytes. Returns `None` when a name is both a file
/// and a directory.
fn children(
    index: &IndexFile,
    prefix_length: usize,
    range: Range<usize>,
) -> Option<Vec<Child<'_>>> {
    let entries = &index.entries;
    let mut children = Vec::new();
    let mut position = range.start;
    while position < range.end {
        let path = index.path(&entries[position]);
        let rest = &path[prefix_length..];
        let child = match rest.bytes().position(|byte| byte == b'/') {
            None => {
                position += 1;
                Child {
                    name: rest,
                    kind: ChildKind::File(position - 1),
                    seen: false,
                }
            }
            Some(slash) => {
                // Sorted paths with a common prefix are adjacent.
                let prefix = &path[..prefix_length + slash + 1];
                let start = position;
                while position < range.end && index.path(&entries[position]).starts_with(prefix) {
                    position += 1;
                }
                Child {
                    name: &rest[..slash],
                    kind: ChildKind::Directory(start..position),
                    seen: false,
                }
            }
        };
        children.push(child);
    }
    // Index order differs from name order where a name continues with a
    // byte below `/`: `a.txt` sorts before `a/b` but after `a`.
    children.sort_unstable_by(|left, right| left.name.cmp(right.name));
    if children.windows(2).any(|pair| pair[0].name == pair[1].name) {
        return None;
    }
    Some(children)
}

/// Returns the mode libgit2 gives a work tree file of raw mode `mode`:
/// `0o100755` for a regular file with the owner's executable bit,
/// `0o100644` for another regular file, `0o120000` for a symbolic link,
/// and `None` for the rest.
fn canonical_mode(mode: u32) -> Option<u32> {
    match mode & MODE_TYPE_MASK {
        MODE_REGULAR if mode & 0o100 != 0 => Some(MODE_REGULAR | 0o755),
        MODE_REGULAR => Some(MODE_REGULAR | 0o644),
        MODE_SYMLINK => Some(MODE_SYMLINK),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;
    use std::fs;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::{PermissionsExt, symlink};
    use std::path::PathBuf;
    use std::process::Command;

    use rustix::fs::{AtFlags, CWD, Timespec, Timestamps, utimensat};
    use tempfile::TempDir;

    use super::super::{libgit2_statuses, statuses};
    use super::*;

    /// mtime, in seconds since the Unix epoch, that [`WorkTree::settle`]
    /// gives every work tree file: long before any index is written.
    const SETTLED: i64 = 1_700_000_000;

    /// Files of every test repository.
    const BASE: [(&str, &str); 5] = [
        ("app.txt", "v1\n"),
        (".gitignore", "*.log\n"),
        ("src/a/one.txt", "one\n"),
        ("src/b/two.txt", "two\n"),
        ("src/b/deep/three.txt", "three\n"),
    ];

    /// A repository on `main` in a temporary directory, built with the git
    /// program.
    struct WorkTree {
        dir: TempDir,
    }

    impl WorkTree {
        /// Initialises a repository and writes [`BASE`] without committing.
        fn new() -> WorkTree {
            let work_tree = WorkTree {
                dir: TempDir::new().unwrap(),
            };
            work_tree.git(&["init", "-q", "-b", "main"]);
            for (name, content) in BASE {
                work_tree.write(name, content);
            }
            work_tree
        }

        /// Returns a repository with [`BASE`] committed and settled.
        fn committed() -> WorkTree {
            let work_tree = WorkTree::new();
            work_tree.commit();
            work_tree
        }

        fn path(&self) -> &Path {
            self.dir.path()
        }

        /// Runs git in the work tree without the user's configuration and
        /// returns its stdout. Panics when git fails.
        fn git(&self, args: &[&str]) -> String {
            let output = Command::new("git")
                .arg("-C")
                .arg(self.path())
                .args(args)
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .env("GIT_AUTHOR_NAME", "Ada Lovelace")
                .env("GIT_AUTHOR_EMAIL", "ada@example.com")
                .env("GIT_COMMITTER_NAME", "Ada Lovelace")
                .env("GIT_COMMITTER_EMAIL", "ada@example.com")
                .env_remove("GIT_DIR")
                .env_remove("GIT_WORK_TREE")
                .env_remove("GIT_INDEX_FILE")
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "git {args:?} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            String::from_utf8(output.stdout).unwrap()
        }

        fn write(&self, name: &str, content: &str) {
            let path = self.path().join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, content).unwrap();
        }

        /// Stages everything, commits and settles the index.
        fn commit(&self) {
            self.git(&["add", "-A"]);
            self.git(&["commit", "-q", "-m", "Add files"]);
            self.settle();
        }

        /// Moves the mtime of every work tree file to [`SETTLED`] and
        /// refreshes the index, as a deploy host's index looks some time
        /// after a checkout: no entry is racily clean.
        fn settle(&self) {
            set_mtimes(self.path(), true);
            self.git(&["update-index", "-q", "--refresh"]);
        }

        /// Sets the mtime of `name` (not following a symbolic link).
        fn set_mtime(&self, name: &str, seconds: i64, nanoseconds: i64) {
            set_mtime(&self.path().join(name), seconds, nanoseconds);
        }

        fn index_path(&self) -> PathBuf {
            self.path().join(".git/index")
        }

        fn index_version(&self) -> u32 {
            let data = fs::read(self.index_path()).unwrap();
            u32::from_be_bytes(data[4..8].try_into().unwrap())
        }

        fn quick(&self) -> Option<Vec<String>> {
            let repository = Repository::open(self.path()).unwrap();
            quick_statuses(&repository)
        }

        fn libgit2(&self) -> Result<Vec<String>, String> {
            let repository = Repository::open(self.path()).unwrap();
            libgit2_statuses(&repository, self.path()).map_err(|error| format!("{error:?}"))
        }

        fn statuses(&self) -> Result<Vec<String>, String> {
            let repository = Repository::open(self.path()).unwrap();
            statuses(&repository, self.path()).map_err(|error| format!("{error:?}"))
        }

        /// Asserts that the quick check lists `expected`, as libgit2 does.
        fn assert_quick(&self, expected: &[&str]) {
            let expected: Vec<String> = expected.iter().map(|path| path.to_string()).collect();
            assert_eq!(self.quick(), Some(expected.clone()), "quick check");
            assert_eq!(self.libgit2(), Ok(expected.clone()), "libgit2");
            assert_eq!(self.statuses(), Ok(expected), "statuses");
        }

        /// Asserts that the quick check leaves the decision to libgit2 and
        /// that libgit2 lists `expected`.
        fn assert_deferred(&self, expected: &[&str]) {
            let expected: Vec<String> = expected.iter().map(|path| path.to_string()).collect();
            assert_eq!(self.quick(), None, "quick check");
            assert_eq!(self.libgit2(), Ok(expected.clone()), "libgit2");
            assert_eq!(self.statuses(), Ok(expected), "statuses");
        }
    }

    fn set_mtime(path: &Path, seconds: i64, nanoseconds: i64) {
        let time = Timespec {
            tv_sec: seconds,
            tv_nsec: nanoseconds,
        };
        let times = Timestamps {
            last_access: time,
            last_modification: time,
        };
        utimensat(CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW).unwrap();
    }

    /// Sets the mtime of everything under `directory` to [`SETTLED`],
    /// skipping `.git` at the top.
    fn set_mtimes(directory: &Path, top: bool) {
        for item in fs::read_dir(directory).unwrap() {
            let item = item.unwrap();
            if top && item.file_name() == ".git" {
                continue;
            }
            if item.file_type().unwrap().is_dir() {
                set_mtimes(&item.path(), false);
            }
            set_mtime(&item.path(), SETTLED, 0);
        }
    }

    #[test]
    fn quick_status_lists_nothing_when_clean() {
        let work_tree = WorkTree::committed();

        assert_eq!(work_tree.index_version(), 2);
        work_tree.assert_quick(&[]);
    }

    #[test]
    fn quick_status_lists_file_of_new_size() {
        let work_tree = WorkTree::committed();
        work_tree.write("app.txt", "v1 with a local edit\n");
        work_tree.write("src/b/deep/three.txt", "");

        work_tree.assert_quick(&["app.txt", "src/b/deep/three.txt"]);
    }

    #[test]
    fn quick_status_lists_deleted_file() {
        let work_tree = WorkTree::committed();
        fs::remove_file(work_tree.path().join("app.txt")).unwrap();

        work_tree.assert_quick(&["app.txt"]);
    }

    #[test]
    fn quick_status_lists_files_of_deleted_directory() {
        let work_tree = WorkTree::committed();
        fs::remove_dir_all(work_tree.path().join("src/b")).unwrap();

        work_tree.assert_quick(&["src/b/deep/three.txt", "src/b/two.txt"]);
    }

    #[test]
    fn quick_status_lists_untracked_file() {
        let work_tree = WorkTree::committed();
        work_tree.write("notes.txt", "draft\n");
        work_tree.write("src/a/extra.txt", "draft\n");
        // libgit2 skips `.git` in any letter case.
        work_tree.write(".GIT", "stray\n");

        work_tree.assert_quick(&["notes.txt", "src/a/extra.txt"]);
    }

    #[test]
    fn quick_status_lists_files_in_untracked_directories() {
        let work_tree = WorkTree::committed();
        work_tree.write("notes/todo/first.txt", "draft\n");
        work_tree.write("notes/second.txt", "draft\n");
        work_tree.write("src/new/deeper/file.txt", "draft\n");
        fs::create_dir_all(work_tree.path().join("empty/inner")).unwrap();
        work_tree.write("logs/server.log", "ignored\n");

        work_tree.assert_quick(&[
            "notes/second.txt",
            "notes/todo/first.txt",
            "src/new/deeper/file.txt",
        ]);
    }

    #[test]
    fn quick_status_defers_many_untracked_files() {
        let work_tree = WorkTree::committed();
        for number in 0..MAX_IGNORE_CHECKS {
            work_tree.write(&format!("scratch/{number:03}.txt"), "draft\n");
        }
        let expected: Vec<String> = (0..MAX_IGNORE_CHECKS)
            .map(|number| format!("scratch/{number:03}.txt"))
            .collect();

        // One check for the directory and one for each file exceed the limit.
        assert_eq!(work_tree.quick(), None);
        assert_eq!(work_tree.libgit2(), Ok(expected.clone()));
        assert_eq!(work_tree.statuses(), Ok(expected));
    }

    #[test]
    fn quick_status_lists_untracked_symlink() {
        let work_tree = WorkTree::committed();
        symlink("app.txt", work_tree.path().join("latest")).unwrap();
        symlink("missing", work_tree.path().join("dangling")).unwrap();

        work_tree.assert_quick(&["dangling", "latest"]);
    }

    #[test]
    fn quick_status_skips_ignored_files_and_directories() {
        let work_tree = WorkTree::new();
        work_tree.write(".gitignore", "*.log\nbuild/\n!keep.log\nlinked/\n");
        work_tree.commit();
        work_tree.write("server.log", "ignored\n");
        work_tree.write("keep.log", "negated\n");
        work_tree.write("build/out.txt", "ignored directory\n");
        // A negated file inside an ignored directory stays ignored.
        work_tree.write("build/keep.log", "ignored directory\n");
        work_tree.write("data/x.log", "ignored\n");
        work_tree.write("data/y.txt", "listed\n");
        // A symbolic link to a directory matches directory patterns.
        symlink("src", work_tree.path().join("linked")).unwrap();

        work_tree.assert_quick(&["data/y.txt", "keep.log"]);
    }

    #[test]
    fn quick_status_follows_nested_gitignore_and_exclude() {
        let work_tree = WorkTree::new();
        work_tree.write("src/.gitignore", "!*.keep.log\n*.tmp\n!special.log\n");
        work_tree.commit();
        work_tree.write("src/a/kept.keep.log", "negated below\n");
        // libgit2 drops a negation without wildcards that negates no earlier
        // pattern of its own file, so this file stays ignored (git lists it).
        work_tree.write("src/special.log", "ignored at the top\n");
        work_tree.write("src/other.log", "ignored at the top\n");
        work_tree.write("src/a/scratch.tmp", "ignored below\n");
        work_tree.write("scratch.tmp", "not ignored at the top\n");
        work_tree.write(".git/info/exclude", "secret.txt\n");
        work_tree.write("secret.txt", "excluded\n");

        work_tree.assert_quick(&["scratch.tmp", "src/a/kept.keep.log"]);
    }

    /// One ignore case: committed ignore files, untracked files and the
    /// untracked files that stay listed.
    struct IgnoreCase {
        ignore_files: &'static [(&'static str, &'static str)],
        untracked: &'static [&'static str],
        listed: &'static [&'static str],
    }

    #[test]
    fn quick_status_matches_libgit2_ignore_rules() {
        let cases = [
            IgnoreCase {
                ignore_files: &[(".gitignore", "/top.txt\n")],
                untracked: &["top.txt", "src/top.txt"],
                listed: &["src/top.txt"],
            },
            IgnoreCase {
                ignore_files: &[(".gitignore", "**/cache\n")],
                untracked: &["cache/x.txt", "src/a/cache/y.txt", "src/cachex"],
                listed: &["src/cachex"],
            },
            IgnoreCase {
                ignore_files: &[(".gitignore", "src/**/gen/\n")],
                untracked: &["src/a/gen/x.txt", "src/a/b/gen/x.txt", "gen/x.txt"],
                listed: &["gen/x.txt"],
            },
            IgnoreCase {
                ignore_files: &[(".gitignore", "build\n")],
                untracked: &["build/x.txt", "src/build", "src/builder"],
                listed: &["src/builder"],
            },
            IgnoreCase {
                ignore_files: &[(".gitignore", "*.o\n!important.o\n")],
                untracked: &["x.o", "important.o", "src/a/important.o"],
                listed: &["important.o", "src/a/important.o"],
            },
            IgnoreCase {
                ignore_files: &[(".gitignore", "logs/*\n!logs/keep/\n")],
                untracked: &["logs/a.txt", "logs/keep/b.txt"],
                listed: &["logs/keep/b.txt"],
            },
            IgnoreCase {
                ignore_files: &[(".gitignore", "*.tmp\n"), ("src/.gitignore", "!*.tmp\n")],
                untracked: &["x.tmp", "src/x.tmp", "src/a/y.tmp"],
                listed: &["src/a/y.tmp", "src/x.tmp"],
            },
            IgnoreCase {
                ignore_files: &[(".gitignore", ""), ("src/.gitignore", "out/\n/local\n")],
                untracked: &[
                    "src/out/x.txt",
                    "src/a/out/y.txt",
                    "out/z.txt",
                    "src/local",
                    "src/a/local",
                ],
                listed: &["out/z.txt", "src/a/local"],
            },
            IgnoreCase {
                ignore_files: &[(".gitignore", "docs/\n!docs/readme.md\n")],
                untracked: &["docs/readme.md", "docs/guide.md"],
                listed: &[],
            },
            IgnoreCase {
                ignore_files: &[(".gitignore", "*\n!*/\n!*.txt\n")],
                untracked: &["a.md", "dir/b.txt", "dir/c.md"],
                listed: &["dir/b.txt"],
            },
            IgnoreCase {
                ignore_files: &[(".gitignore", "[ab].txt\n\\#hash\n")],
                untracked: &["a.txt", "c.txt", "#hash"],
                listed: &["c.txt"],
            },
        ];
        for (number, case) in cases.iter().enumerate() {
            let work_tree = WorkTree::new();
            for (name, content) in case.ignore_files {
                work_tree.write(name, content);
            }
            work_tree.commit();
            for name in case.untracked {
                work_tree.write(name, "untracked\n");
            }

            let listed: Vec<String> = case.listed.iter().map(|path| path.to_string()).collect();
            assert_eq!(
                work_tree.quick(),
                Some(listed.clone()),
                "case {number}: quick check"
            );
            assert_eq!(work_tree.libgit2(), Ok(listed), "case {number}: libgit2");
        }
    }

    #[test]
    fn quick_status_skips_untracked_in_ignored_directory() {
        let work_tree = WorkTree::new();
        work_tree.write(".gitignore", "vendor/\n");
        work_tree.write("vendor/lib.txt", "library\n");
        work_tree.git(&["add", "-f", "vendor/lib.txt"]);
        work_tree.commit();
        work_tree.write("vendor/new.txt", "ignored\n");
        work_tree.write("vendor/lib.txt", "library with a patch\n");

        work_tree.assert_quick(&["vendor/lib.txt"]);
    }

    #[test]
    fn quick_status_lists_changed_symlink() {
        let work_tree = WorkTree::new();
        symlink("app.txt", work_tree.path().join("current")).unwrap();
        symlink("app.txt", work_tree.path().join("previous")).unwrap();
        work_tree.commit();
        work_tree.assert_quick(&[]);

        fs::remove_file(work_tree.path().join("current")).unwrap();
        symlink("src/a/one.txt", work_tree.path().join("current")).unwrap();
        fs::remove_file(work_tree.path().join("previous")).unwrap();
        work_tree.write("previous", "now a regular file\n");

        work_tree.assert_quick(&["current", "previous"]);
    }

    #[test]
    fn quick_status_lists_flipped_executable_bit() {
        let work_tree = WorkTree::committed();
        let path = work_tree.path().join("app.txt");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();

        work_tree.assert_quick(&["app.txt"]);
    }

    #[test]
    fn quick_status_ignores_executable_bit_without_filemode() {
        let work_tree = WorkTree::committed();
        work_tree.git(&["config", "core.filemode", "false"]);
        let path = work_tree.path().join("app.txt");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();

        // chmod changed the ctime, so libgit2 hashes the file.
        work_tree.assert_deferred(&[]);

        work_tree.git(&["config", "core.trustctime", "false"]);
        work_tree.assert_quick(&[]);
    }

    #[test]
    fn quick_status_reads_index_version_4() {
        let work_tree = WorkTree::committed();
        work_tree.git(&["update-index", "--index-version", "4"]);
        work_tree.write("src/a/one.txt", "one, edited\n");
        fs::remove_file(work_tree.path().join("src/b/two.txt")).unwrap();
        work_tree.write("src/b/deep/new.txt", "draft\n");

        assert_eq!(work_tree.index_version(), 4);
        work_tree.assert_quick(&["src/a/one.txt", "src/b/deep/new.txt", "src/b/two.txt"]);
    }

    #[test]
    fn quick_status_defers_skip_worktree_entry() {
        let work_tree = WorkTree::committed();
        work_tree.git(&["update-index", "--skip-worktree", "app.txt"]);
        fs::remove_file(work_tree.path().join("app.txt")).unwrap();

        // libgit2 skips the stat check of the entry, not the missing file.
        assert_eq!(work_tree.index_version(), 3);
        work_tree.assert_deferred(&["app.txt"]);
    }

    #[test]
    fn quick_status_defers_intent_to_add_entry() {
        let work_tree = WorkTree::committed();
        work_tree.write("new.txt", "planned\n");
        work_tree.git(&["add", "-N", "new.txt"]);

        assert_eq!(work_tree.index_version(), 3);
        work_tree.assert_deferred(&["new.txt"]);
    }

    #[test]
    fn quick_status_defers_staged_change() {
        let work_tree = WorkTree::committed();
        work_tree.write("app.txt", "v2, staged\n");
        work_tree.git(&["add", "app.txt"]);
        work_tree.settle();

        work_tree.assert_deferred(&["app.txt"]);
    }

    #[test]
    fn quick_status_defers_same_size_edit() {
        let work_tree = WorkTree::committed();
        work_tree.write("app.txt", "v2\n");

        work_tree.assert_deferred(&["app.txt"]);
    }

    #[test]
    fn quick_status_defers_touched_file() {
        let work_tree = WorkTree::committed();
        work_tree.set_mtime("app.txt", SETTLED + 100, 0);

        work_tree.assert_deferred(&[]);
    }

    #[test]
    fn quick_status_defers_racily_clean_file() {
        let work_tree = WorkTree::committed();
        // Every entry now has the mtime of the index file itself.
        set_mtime(&work_tree.index_path(), SETTLED, 0);
        work_tree.assert_deferred(&[]);

        set_mtime(&work_tree.index_path(), SETTLED, 1);
        work_tree.assert_quick(&[]);
    }

    #[test]
    fn quick_status_defers_split_index() {
        let work_tree = WorkTree::committed();
        work_tree.git(&["update-index", "--split-index"]);

        assert_eq!(work_tree.quick(), None);
        let libgit2 = work_tree.libgit2();
        assert!(
            libgit2
                .as_ref()
                .is_err_and(|error| error.contains("unsupported mandatory extension")),
            "{libgit2:?}"
        );
        assert_eq!(work_tree.statuses(), libgit2);
    }

    #[test]
    fn quick_status_defers_corrupt_index() {
        let work_tree = WorkTree::committed();
        let data = fs::read(work_tree.index_path()).unwrap();
        let mut signature = data.clone();
        signature[..4].copy_from_slice(b"XXXX");
        let truncated = &data[..data.len() - 10];

        for (name, bytes) in [("signature", &signature[..]), ("truncated", truncated)] {
            fs::write(work_tree.index_path(), bytes).unwrap();
            assert_eq!(work_tree.quick(), None, "{name}");
            let libgit2 = work_tree.libgit2();
            assert!(libgit2.is_err(), "{name}: {libgit2:?}");
            assert_eq!(work_tree.statuses(), libgit2, "{name}");
        }
    }

    #[test]
    fn quick_status_defers_nested_repository() {
        let work_tree = WorkTree::committed();
        work_tree.write("nested/file.txt", "inside\n");
        work_tree.git(&["init", "-q", "nested"]);

        work_tree.assert_deferred(&["nested/"]);
    }

    #[test]
    fn quick_status_defers_non_utf8_name() {
        let work_tree = WorkTree::committed();
        let name = OsStr::from_bytes(b"caf\xe9.txt");
        fs::write(work_tree.path().join(name), "draft\n").unwrap();

        work_tree.assert_deferred(&["caf\u{fffd}.txt"]);
    }

    #[test]
    fn quick_status_defers_file_replaced_by_directory() {
        let work_tree = WorkTree::committed();
        fs::remove_file(work_tree.path().join("app.txt")).unwrap();
        work_tree.write("app.txt/inner.txt", "draft\n");

        work_tree.assert_deferred(&["app.txt", "app.txt/inner.txt"]);
    }

    #[test]
    fn quick_status_defers_directory_replaced_by_file() {
        let work_tree = WorkTree::committed();
        fs::remove_dir_all(work_tree.path().join("src/a")).unwrap();
        work_tree.write("src/a", "now a file\n");

        work_tree.assert_deferred(&["src/a", "src/a/one.txt"]);
    }

    #[test]
    fn quick_status_defers_path_beyond_path_max() {
        let work_tree = WorkTree::committed();
        // 4,090 bytes: git accepts it, but with the work tree's path in
        // front it reaches PATH_MAX, where libgit2's lstat fails.
        let name = format!("{}file.txt..", format!("{}/", "d".repeat(254)).repeat(16));
        let blob = work_tree.git(&["rev-parse", "HEAD:app.txt"]);
        let cacheinfo = format!("100644,{},{name}", blob.trim());
        work_tree.git(&["update-index", "--add", "--cacheinfo", &cacheinfo]);
        work_tree.git(&["commit", "-q", "-m", "Add a long path"]);
        work_tree.git(&["checkout", "--", "."]);
        // An index dated after every file (2033) leaves no entry racily
        // clean.
        work_tree.set_mtime(".git/index", 2_000_000_000, 0);

        assert_eq!(name.len(), 4090);
        assert_eq!(work_tree.quick(), None);
        assert_eq!(work_tree.statuses(), work_tree.libgit2());
    }

    #[test]
    fn quick_status_defers_unborn_head() {
        let work_tree = WorkTree::new();

        work_tree.assert_deferred(&[
            ".gitignore",
            "app.txt",
            "src/a/one.txt",
            "src/b/deep/three.txt",
            "src/b/two.txt",
        ]);
    }

    #[test]
    fn quick_status_defers_ignorecase() {
        let work_tree = WorkTree::committed();
        work_tree.git(&["config", "core.ignorecase", "true"]);
        work_tree.write("notes.txt", "draft\n");

        work_tree.assert_deferred(&["notes.txt"]);
    }
}
