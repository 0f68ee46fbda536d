//! Parser for git's index file (`.git/index`), versions 2 to 4, for the
//! quick status check in [`super::worktree`].
//!
//! It reads the entries and the root of the `TREE` extension and returns
//! `None` for malformed data and for every feature that check does not
//! handle: conflict stages, assume-valid, skip-worktree and intent-to-add
//! entries, gitlinks, split and sparse indexes, merge extensions and paths
//! that libgit2 rejects. It does not verify the trailing SHA-1 checksum.

use std::ops::Range;

/// Length of a SHA-1 object id, which is also the length of the checksum
/// that ends the index file.
pub(super) const OID_LENGTH: usize = 20;

/// Path length at which libgit2 1.9 rejects an index path:
/// `GIT_PATH_MAX` (4096), which counts the terminating NUL.
const MAX_PATH_LENGTH: usize = 4096;

/// Length of an entry's fixed fields, up to and including the 16-bit flags.
const ENTRY_HEADER_LENGTH: usize = 62;

const FLAG_ASSUME_VALID: u16 = 0x8000;
const FLAG_EXTENDED: u16 = 0x4000;
const FLAG_STAGE: u16 = 0x3000;
const NAME_LENGTH_MASK: u16 = 0x0fff;

pub(super) const MODE_TYPE_MASK: u32 = 0o170000;
pub(super) const MODE_REGULAR: u32 = 0o100000;
pub(super) const MODE_SYMLINK: u32 = 0o120000;

/// The parts of an index file that the quick status check reads.
#[derive(Debug)]
pub(super) struct IndexFile {
    /// Paths of all entries, concatenated. [`IndexFile::path`] returns one.
    paths: String,
    /// Entries, sorted by path and free of duplicates.
    pub entries: Vec<IndexEntry>,
    /// Root of the cache tree, `None` when the `TREE` extension is absent or
    /// its root is invalidated.
    pub root_tree: Option<RootTree>,
}

impl IndexFile {
    /// Returns the path of `entry`, relative to the work tree and
    /// `/`-separated.
    pub(super) fn path(&self, entry: &IndexEntry) -> &str {
        &self.paths[entry.path.clone()]
    }
}

/// Valid root of the cache tree: the tree that the whole index would write.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct RootTree {
    /// Number of index entries the tree covers.
    pub entry_count: usize,
    pub id: [u8; OID_LENGTH],
}

/// Timestamp as the index stores it: seconds and nanoseconds, each 32 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct IndexTime {
    pub seconds: u32,
    pub nanoseconds: u32,
}

/// One stage-0 entry with the stat data that git cached for it.
#[derive(Debug)]
pub(super) struct IndexEntry {
    /// Byte range of the path in [`IndexFile`]'s path buffer.
    path: Range<usize>,
    pub ctime: IndexTime,
    pub mtime: IndexTime,
    pub ino: u32,
    /// `0o100644`, `0o100755` or `0o120000`.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// File size truncated to 32 bits.
    pub size: u32,
}

/// Parses a whole index file. Returns `None` for malformed data and for the
/// features listed in the module documentation.
pub(super) fn parse(data: &[u8]) -> Option<IndexFile> {
    // The checksum is never read, so the reader stops before it.
    let body_length = data.len().checked_sub(OID_LENGTH)?;
    let mut reader = Reader::new(&data[..body_length]);

    if reader.take(4)? != b"DIRC" {
        return None;
    }
    let version = reader.u32()?;
    if !(2..=4).contains(&version) {
        return None;
    }
    let count = usize::try_from(reader.u32()?).ok()?;

    // Every entry takes at least the fixed fields and one path byte, so a
    // forged count cannot reserve more than the file could contain.
    let mut entries: Vec<IndexEntry> =
        Vec::with_capacity(count.min(body_length / ENTRY_HEADER_LENGTH));
    // Paths are what remains after the fixed fields, except that version 4
    // compresses them, so its buffer may grow.
    let mut paths = Vec::with_capacity(body_length.saturating_sub(count * ENTRY_HEADER_LENGTH));
    for _ in 0..count {
        let previous = entries.last().map(|entry| entry.path.clone());
        let entry = parse_entry(&mut reader, version, &mut paths, previous.clone())?;
        // git writes entries sorted by path bytes, and a stage-0-only index
        // has each path once.
        if let Some(previous) = previous
            && paths[entry.path.clone()] <= paths[previous]
        {
            return None;
        }
        entries.push(entry);
    }
    // The paths are valid UTF-8 one by one exactly when their concatenation
    // is and no path boundary falls inside a character.
    let paths = String::from_utf8(paths).ok()?;
    let boundaries_valid = entries.iter().all(|entry| {
        paths.is_char_boundary(entry.path.start) && paths.is_char_boundary(entry.path.end)
    });
    if !boundaries_valid {
        return None;
    }

    let mut root_tree = None;
    while reader.remaining() > 0 {
        let signature = reader.take(4)?;
        let length = usize::try_from(reader.u32()?).ok()?;
        let body = reader.take(length)?;
        match signature {
            b"TREE" => root_tree = parse_tree_extension(body)?,
            // Resolve-undo and conflict names come from merges, which
            // libgit2 parses and this module does not.
            b"REUC" | b"NAME" => return None,
            // Other extensions that start with an upper-case letter are
            // optional (such as `UNTR`, `FSMN`, `EOIE`, `IEOT`) and do
            // not change the entries.
            [b'A'..=b'Z', ..] => {}
            // Lower-case ones are mandatory: `link` (split index), `sdir`
            // (sparse index) and any future one.
            _ => return None,
        }
    }
    Some(IndexFile {
        paths,
        entries,
        root_tree,
    })
}

/// Parses one entry and appends its path to `paths`. `previous` is the
/// range of the path before, from which version 4 strips a suffix to
/// compress the path.
fn parse_entry(
    reader: &mut Reader,
    version: u32,
    paths: &mut Vec<u8>,
    previous: Option<Range<usize>>,
) -> Option<IndexEntry> {
    let fixed = reader.take(ENTRY_HEADER_LENGTH)?;
    let word = |offset: usize| -> u32 {
        u32::from_be_bytes([
            fixed[offset],
            fixed[offset + 1],
            fixed[offset + 2],
            fixed[offset + 3],
        ])
    };
    let flags = u16::from_be_bytes([fixed[60], fixed[61]]);
    if flags & (FLAG_ASSUME_VALID | FLAG_STAGE) != 0 {
        return None;
    }
    let mut header_length = ENTRY_HEADER_LENGTH;
    if flags & FLAG_EXTENDED != 0 {
        // Skip-worktree and intent-to-add live in the extended flags, which
        // version 2 does not have.
        if version < 3 || reader.u16()? != 0 {
            return None;
        }
        header_length += 2;
    }

    let mode = word(24);
    if mode != MODE_REGULAR | 0o644 && mode != MODE_REGULAR | 0o755 && mode != MODE_SYMLINK {
        return None;
    }

    let start = paths.len();
    if version >= 4 {
        let strip = usize::try_from(reader.varint()?).ok()?;
        let previous = previous.unwrap_or(start..start);
        let prefix_length = previous.len().checked_sub(strip)?;
        paths.extend_from_within(previous.start..previous.start + prefix_length);
        paths.extend_from_slice(reader.until_nul()?);
    } else {
        let name = reader.until_nul()?;
        // The flags store the length, or 0xfff for 0xfff bytes and more.
        let name_length = flags & NAME_LENGTH_MASK;
        let length_matches = if name_length == NAME_LENGTH_MASK {
            name.len() >= usize::from(name_length)
        } else {
            name.len() == usize::from(name_length)
        };
        if !length_matches {
            return None;
        }
        // Entries are padded with 1 to 8 NUL bytes to a multiple of 8, and
        // `until_nul` already consumed the first of them.
        let entry_length = (header_length + name.len() + 8) & !7;
        reader.take(entry_length - header_length - name.len() - 1)?;
        paths.extend_from_slice(name);
    }
    if !is_plain_path(&paths[start..], mode == MODE_SYMLINK) {
        return None;
    }

    Some(IndexEntry {
        path: start..paths.len(),
        ctime: IndexTime {
            seconds: word(0),
            nanoseconds: word(4),
        },
        mtime: IndexTime {
            seconds: word(8),
            nanoseconds: word(12),
        },
        ino: word(20),
        mode,
        uid: word(28),
        gid: word(32),
        size: word(36),
    })
}

/// Parses the `TREE` extension and returns its root when that root is
/// valid. Checks the whole extension, because libgit2 rejects an index
/// whose cache tree is malformed anywhere.
///
/// Each node is a NUL-terminated name, the ASCII decimal entry count
/// (negative when invalidated), a space, the decimal number of subtrees, a
/// newline and, unless invalidated, the tree id. Subtrees follow their
/// parent depth-first.
fn parse_tree_extension(body: &[u8]) -> Option<Option<RootTree>> {
    let mut reader = Reader::new(body);
    let mut root = None;
    let mut pending: usize = 1;
    let mut is_root = true;
    while pending > 0 {
        pending -= 1;
        reader.until_nul()?;
        let entry_count = reader.decimal(b' ')?;
        let subtrees = reader.decimal(b'\n')?;
        if subtrees < 0 {
            return None;
        }
        if entry_count >= 0 {
            let id: [u8; OID_LENGTH] = reader.take(OID_LENGTH)?.try_into().ok()?;
            if is_root {
                root = Some(RootTree {
                    entry_count: usize::try_from(entry_count).ok()?,
                    id,
                });
            }
        }
        is_root = false;
        pending = pending.checked_add(usize::try_from(subtrees).ok()?)?;
    }
    if reader.remaining() != 0 {
        return None;
    }
    Some(root)
}

/// Tells whether libgit2 1.9 reads `path` from an index without error.
///
/// libgit2 rejects empty, `.` and `..` components and names that NTFS
/// resolves to `.git` (such as `.git.`, `.GIT` or `git~1`). This check also
/// rejects paths that libgit2 accepts on Linux, such as names that HFS+
/// resolves to `.git` and symbolic links named like `.gitmodules`, because
/// a rejected path only means that libgit2 decides.
fn is_plain_path(path: &[u8], is_symlink: bool) -> bool {
    if path.is_empty() || path.len() >= MAX_PATH_LENGTH {
        return false;
    }
    path.split(|&byte| byte == b'/').all(|component| {
        if component.is_empty() || component == b"." || component == b".." {
            return false;
        }
        // HFS+ ignores some non-ASCII code points, so every name that NTFS
        // or HFS+ could resolve to `.git`, `git~1` or `.gitmodules` starts
        // with `.` or `g` after dropping all non-ASCII bytes.
        let first_ascii = component.iter().find(|byte| byte.is_ascii());
        !matches!(first_ascii, Some(b'.' | b'g' | b'G')) || is_plain_name(component, is_symlink)
    })
}

/// Checks one path component that starts with `.` or `g` for
/// [`is_plain_path`].
fn is_plain_name(component: &[u8], is_symlink: bool) -> bool {
    let mut prefix = [0u8; 12];
    let mut length = 0;
    for byte in component.iter().filter(|byte| byte.is_ascii()) {
        if length == prefix.len() {
            break;
        }
        prefix[length] = byte.to_ascii_lowercase();
        length += 1;
    }
    let prefix = &prefix[..length];
    if let Some(rest) = prefix.strip_prefix(b".git")
        && matches!(rest.first(), None | Some(b' ' | b'.' | b'\\' | b':'))
    {
        return false;
    }
    if prefix.starts_with(b"git~") {
        return false;
    }
    let names_gitmodules = prefix.starts_with(b".gitmodules")
        || prefix.starts_with(b"gitmod~")
        || prefix.starts_with(b"gi7eba");
    !(is_symlink && names_gitmodules)
}

/// Bounds-checked big-endian reader over a byte slice.
struct Reader<'a> {
    data: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8]) -> Self {
        Reader { data, position: 0 }
    }

    fn remaining(&self) -> usize {
        self.data.len() - self.position
    }

    fn take(&mut self, length: usize) -> Option<&'a [u8]> {
        let end = self.position.checked_add(length)?;
        let bytes = self.data.get(self.position..end)?;
        self.position = end;
        Some(bytes)
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    /// Reads bytes up to a NUL and consumes the NUL too.
    fn until_nul(&mut self) -> Option<&'a [u8]> {
        let rest = &self.data[self.position..];
        let length = rest.iter().position(|&byte| byte == 0)?;
        self.position += length + 1;
        Some(&rest[..length])
    }

    /// Reads git's offset varint: 7 bits a byte, most significant group
    /// first, the high bit set on every byte but the last, and 1 added to
    /// the value before each shift so that each length has one encoding.
    fn varint(&mut self) -> Option<u64> {
        let mut byte = self.u8()?;
        let mut value = u64::from(byte & 0x7f);
        while byte & 0x80 != 0 {
            byte = self.u8()?;
            value = value.checked_add(1)?.checked_mul(128)? | u64::from(byte & 0x7f);
        }
        Some(value)
    }

    /// Reads an ASCII decimal in the `i32` range with an optional minus
    /// sign, then the `terminator` byte.
    fn decimal(&mut self, terminator: u8) -> Option<i64> {
        let negative = self.data.get(self.position) == Some(&b'-');
        if negative {
            self.position += 1;
        }
        let mut value: i64 = 0;
        let mut digits = 0;
        while let Some(&byte) = self.data.get(self.position)
            && byte.is_ascii_digit()
        {
            value = value * 10 + i64::from(byte - b'0');
            if value > i64::from(i32::MAX) + 1 {
                return None;
            }
            digits += 1;
            self.position += 1;
        }
        if digits == 0 || self.u8()? != terminator {
            return None;
        }
        let value = if negative { -value } else { value };
        i32::try_from(value).ok().map(i64::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One entry for [`index_bytes`]: path, mode, flags and extended flags.
    struct Spec<'a> {
        path: &'a str,
        mode: u32,
        flags: u16,
        extended: Option<u16>,
    }

    fn regular(path: &str) -> Spec<'_> {
        Spec {
            path,
            mode: 0o100644,
            flags: 0,
            extended: None,
        }
    }

    /// Writes an index file of `version` with `entries` and `extensions`,
    /// each entry's stat fields set to distinct numbers, and a zero checksum.
    fn index_bytes(version: u32, entries: &[Spec], extensions: &[(&[u8; 4], Vec<u8>)]) -> Vec<u8> {
        let mut data = Vec::new();
        data.extend_from_slice(b"DIRC");
        data.extend_from_slice(&version.to_be_bytes());
        data.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        let mut previous = "";
        for (number, spec) in entries.iter().enumerate() {
            let start = data.len();
            for field in 0..10u32 {
                let value = match field {
                    6 => spec.mode,
                    _ => 1000 * (number as u32 + 1) + field,
                };
                data.extend_from_slice(&value.to_be_bytes());
            }
            data.extend_from_slice(&[0xab; OID_LENGTH]);
            let mut flags = spec.flags;
            if version < 4 {
                flags |= spec.path.len().min(0xfff) as u16;
            }
            if spec.extended.is_some() {
                flags |= FLAG_EXTENDED;
            }
            data.extend_from_slice(&flags.to_be_bytes());
            if let Some(extended) = spec.extended {
                data.extend_from_slice(&extended.to_be_bytes());
            }
            if version >= 4 {
                let common = previous
                    .bytes()
                    .zip(spec.path.bytes())
                    .take_while(|(a, b)| a == b)
                    .count();
                // Every strip length in these tests is below 128, one byte.
                data.push((previous.len() - common) as u8);
                data.extend_from_slice(&spec.path.as_bytes()[common..]);
                data.push(0);
            } else {
                data.extend_from_slice(spec.path.as_bytes());
                let length = data.len() - start;
                data.resize(start + ((length + 8) & !7), 0);
            }
            previous = spec.path;
        }
        for (signature, body) in extensions {
            data.extend_from_slice(&signature[..]);
            data.extend_from_slice(&(body.len() as u32).to_be_bytes());
            data.extend_from_slice(body);
        }
        data.extend_from_slice(&[0; OID_LENGTH]);
        data
    }

    fn tree_node(name: &str, entry_count: i32, subtrees: u32, id: Option<u8>) -> Vec<u8> {
        let mut node = format!("{name}\0{entry_count} {subtrees}\n").into_bytes();
        if let Some(byte) = id {
            node.extend_from_slice(&[byte; OID_LENGTH]);
        }
        node
    }

    #[test]
    fn parse_reads_entry_fields_and_paths() {
        for version in [2, 3, 4] {
            let entries = [regular("a.txt"), regular("dir/b.txt"), regular("dir/c.txt")];
            let index = parse(&index_bytes(version, &entries, &[])).unwrap();

            let paths: Vec<&str> = index.entries.iter().map(|e| index.path(e)).collect();
            assert_eq!(
                paths,
                ["a.txt", "dir/b.txt", "dir/c.txt"],
                "version {version}"
            );
            let second = &index.entries[1];
            assert_eq!(second.ctime.seconds, 2000);
            assert_eq!(second.ctime.nanoseconds, 2001);
            assert_eq!(second.mtime.seconds, 2002);
            assert_eq!(second.mtime.nanoseconds, 2003);
            assert_eq!(second.ino, 2005);
            assert_eq!(second.mode, 0o100644);
            assert_eq!(second.uid, 2007);
            assert_eq!(second.gid, 2008);
            assert_eq!(second.size, 2009);
            assert!(index.root_tree.is_none());
        }
    }

    #[test]
    fn parse_reads_long_paths() {
        let long = format!("{}/file.txt", "d".repeat(5000));
        let within = format!("{}/file.txt", "d".repeat(4000));
        // libgit2 reads paths of up to 4,095 bytes, NUL excluded.
        let longest = format!("{}/file.txt", "d".repeat(4086));
        let too_long = format!("{}/file.txt", "d".repeat(4087));
        for version in [2, 4] {
            for path in [&within, &longest] {
                let bytes = index_bytes(version, &[regular(path)], &[]);
                let index = parse(&bytes).unwrap();
                assert_eq!(index.path(&index.entries[0]), path, "version {version}");
            }

            for path in [&long, &too_long] {
                let bytes = index_bytes(version, &[regular(path)], &[]);
                assert!(
                    parse(&bytes).is_none(),
                    "version {version}, {} bytes",
                    path.len()
                );
            }
        }
    }

    #[test]
    fn parse_reads_valid_tree_root() {
        let mut tree = tree_node("", 2, 1, Some(7));
        tree.extend(tree_node("dir", 1, 0, Some(8)));
        let entries = [regular("a.txt"), regular("dir/b.txt")];

        let index = parse(&index_bytes(2, &entries, &[(b"TREE", tree)])).unwrap();

        let expected = RootTree {
            entry_count: 2,
            id: [7; OID_LENGTH],
        };
        assert_eq!(index.root_tree, Some(expected));
    }

    #[test]
    fn parse_skips_invalidated_tree_root() {
        let mut tree = tree_node("", -1, 1, None);
        tree.extend(tree_node("dir", 1, 0, Some(8)));
        let entries = [regular("a.txt"), regular("dir/b.txt")];

        let index = parse(&index_bytes(2, &entries, &[(b"TREE", tree)])).unwrap();

        assert!(index.root_tree.is_none());
    }

    #[test]
    fn parse_rejects_malformed_tree_extension() {
        let entries = [regular("a.txt")];
        let mut trailing = tree_node("", 1, 0, Some(7));
        trailing.push(b'x');
        let mut missing_child = tree_node("", 1, 2, Some(7));
        missing_child.extend(tree_node("dir", 1, 0, Some(8)));
        let cases: [(&str, Vec<u8>); 5] = [
            ("trailing byte", trailing),
            ("missing subtree", missing_child),
            ("short id", b"\x001 0\n\x07\x07".to_vec()),
            ("no digits", b"\0 0\n".to_vec()),
            ("count overflow", b"\x0099999999999 0\n".to_vec()),
        ];
        for (name, tree) in cases {
            let bytes = index_bytes(2, &entries, &[(b"TREE", tree)]);
            assert!(parse(&bytes).is_none(), "{name}");
        }
    }

    #[test]
    fn parse_rejects_unhandled_extensions() {
        let entries = [regular("a.txt")];
        for signature in [b"link", b"sdir", b"REUC", b"NAME", b"zzzz"] {
            let bytes = index_bytes(2, &entries, &[(signature, vec![0; 24])]);
            let name = String::from_utf8_lossy(signature).into_owned();
            assert!(parse(&bytes).is_none(), "{name}");
        }
        let bytes = index_bytes(2, &entries, &[(b"UNTR", vec![1, 2, 3])]);
        assert!(parse(&bytes).is_some(), "UNTR is optional");
    }

    #[test]
    fn parse_rejects_flagged_entries() {
        let cases = [
            ("stage 1", 2, 0x1000, None),
            ("stage 3", 2, 0x3000, None),
            ("assume valid", 2, FLAG_ASSUME_VALID, None),
            ("skip worktree", 3, 0, Some(0x4000)),
            ("intent to add", 3, 0, Some(0x2000)),
            ("extended in version 2", 2, 0, Some(0)),
        ];
        for (name, version, flags, extended) in cases {
            let spec = Spec {
                path: "a.txt",
                mode: 0o100644,
                flags,
                extended,
            };
            let bytes = index_bytes(version, &[spec], &[]);
            assert!(parse(&bytes).is_none(), "{name}");
        }
        let spec = Spec {
            path: "a.txt",
            mode: 0o100644,
            flags: 0,
            extended: Some(0),
        };
        let bytes = index_bytes(3, &[spec], &[]);
        assert!(parse(&bytes).is_some(), "empty extended flags");
    }

    #[test]
    fn parse_rejects_gitlinks_and_odd_modes() {
        for mode in [0o160000, 0o100664, 0o040000, 0o100000] {
            let spec = Spec {
                path: "a",
                mode,
                flags: 0,
                extended: None,
            };
            assert!(parse(&index_bytes(2, &[spec], &[])).is_none(), "{mode:o}");
        }
        let symlink = Spec {
            path: "a",
            mode: 0o120000,
            flags: 0,
            extended: None,
        };
        let index = parse(&index_bytes(2, &[symlink], &[])).unwrap();
        assert_eq!(index.entries[0].mode, MODE_SYMLINK);
    }

    #[test]
    fn parse_rejects_unsorted_and_duplicate_paths() {
        let unsorted = [regular("b.txt"), regular("a.txt")];
        let duplicate = [regular("a.txt"), regular("a.txt")];

        assert!(parse(&index_bytes(2, &unsorted, &[])).is_none());
        assert!(parse(&index_bytes(2, &duplicate, &[])).is_none());
    }

    #[test]
    fn parse_rejects_paths_libgit2_rejects() {
        let rejected = [
            ".git/config",
            "a/.GIT/config",
            "a/.git./b",
            "a/.git /b",
            "a/.git:stream",
            "a/git~1/b",
            "a/\u{200c}.git/b",
            "a/../b",
            "./a",
            "a//b",
            "a/",
            "/a",
        ];
        for path in rejected {
            let bytes = index_bytes(2, &[regular(path)], &[]);
            assert!(parse(&bytes).is_none(), "{path:?}");
        }
        let accepted = [".gitignore", ".github/workflows/ci.yml", "a/.gitmodules"];
        for path in accepted {
            let bytes = index_bytes(2, &[regular(path)], &[]);
            assert!(parse(&bytes).is_some(), "{path:?}");
        }
        let symlink = Spec {
            path: "a/.gitmodules",
            mode: 0o120000,
            flags: 0,
            extended: None,
        };
        assert!(parse(&index_bytes(2, &[symlink], &[])).is_none());
    }

    #[test]
    fn parse_rejects_bad_headers() {
        let good = index_bytes(2, &[regular("a.txt")], &[]);
        let mut signature = good.clone();
        signature[0] = b'X';
        let mut version = good.clone();
        version[7] = 5;
        let mut count = good.clone();
        count[11] = 2;
        let mut name_length = good.clone();
        // The flags' low byte contains the name length of the only entry.
        name_length[12 + 61] = 4;

        assert!(parse(&good).is_some());
        assert!(parse(&signature).is_none(), "signature");
        assert!(parse(&version).is_none(), "version 5");
        assert!(parse(&count).is_none(), "count beyond the data");
        assert!(parse(&name_length).is_none(), "name length");
        assert!(parse(&good[..good.len() - 1]).is_none(), "short checksum");
        assert!(parse(&[]).is_none(), "empty file");
    }

    #[test]
    fn parse_rejects_bad_prefix_compression() {
        let entries = [regular("dir/a.txt"), regular("dir/b.txt")];
        let good = index_bytes(4, &entries, &[]);
        let strip_at = 12 + ENTRY_HEADER_LENGTH + 1 + "dir/a.txt".len() + 1 + ENTRY_HEADER_LENGTH;
        assert_eq!(good[strip_at], 5, "the second entry strips `a.txt`");
        let mut too_long = good.clone();
        too_long[strip_at] = 10;
        let mut overflow = good.clone();
        overflow.splice(strip_at..strip_at + 1, [0xff; 12]);

        let index = parse(&good).unwrap();
        assert_eq!(index.path(&index.entries[1]), "dir/b.txt");
        assert!(parse(&too_long).is_none(), "strip beyond the previous path");
        assert!(parse(&overflow).is_none(), "varint overflow");
    }

    #[test]
    fn varint_reads_git_offset_encoding() {
        let cases: [(&[u8], u64); 4] = [
            (&[0x00], 0),
            (&[0x7f], 127),
            (&[0x80, 0x00], 128),
            (&[0x80, 0x80, 0x00], 16_512),
        ];
        for (bytes, expected) in cases {
            assert_eq!(Reader::new(bytes).varint(), Some(expected), "{bytes:?}");
        }
    }

    #[test]
    fn parse_survives_every_truncation_and_byte_flip() {
        let mut tree = tree_node("", 3, 1, Some(7));
        tree.extend(tree_node("dir", 2, 0, Some(8)));
        let entries = [regular("a.txt"), regular("dir/b.txt"), regular("dir/c.txt")];
        for version in [2, 4] {
            let bytes = index_bytes(version, &entries, &[(b"TREE", tree.clone())]);
            assert!(parse(&bytes).is_some());
            // Only the absence of a panic matters here. A cut that leaves
            // exactly the entries and 20 more bytes parses, because the
            // checksum is not verified, and some flips only change stat data.
            for length in 0..bytes.len() {
                let _ = parse(&bytes[..length]);
            }
            for position in 0..bytes.len() {
                let mut flipped = bytes.clone();
                flipped[position] ^= 0xff;
                let _ = parse(&flipped);
            }
            let cut = bytes.len() - 10;
            assert!(
                parse(&bytes[..cut]).is_none(),
                "cut inside the TREE extension"
            );
        }
    }
}
