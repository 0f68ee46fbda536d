//! Checks of tar entries before a directory restore writes them: a path
//! must stay inside the target folder, never pass through a symbolic link
//! from the archive, and a link must point inside the folder.

use std::collections::HashSet;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use tar::EntryType;

use crate::engine::backup::BackupError;

/// An archive entry after its checks, ready to extract.
pub(super) struct PlannedEntry {
    /// Path below the target folder; empty for the folder itself.
    pub(super) relative: PathBuf,
    pub(super) kind: EntryType,
    /// Target of a link, already checked.
    pub(super) link: Option<PathBuf>,
}

/// Checks the path and link target of `entry`. `links` contains the
/// symbolic links met so far, and no later entry may be written through
/// one.
pub(super) fn plan_entry<R: Read>(
    entry: &tar::Entry<'_, R>,
    links: &mut HashSet<PathBuf>,
) -> Result<PlannedEntry, BackupError> {
    let raw = entry.path().map_err(|error| BackupError::UnsafeEntry {
        entry: String::from_utf8_lossy(&entry.path_bytes()).into_owned(),
        reason: if error.kind() == io::ErrorKind::InvalidData {
            "invalid path"
        } else {
            "unreadable path"
        },
    })?;
    let shown = raw.display().to_string();
    let unsafe_entry = |reason| BackupError::UnsafeEntry {
        entry: shown.clone(),
        reason,
    };
    let relative = clean_relative(&raw).ok_or_else(|| unsafe_entry("path leaves the folder"))?;
    if relative
        .ancestors()
        .skip(1)
        .any(|ancestor| links.contains(ancestor))
    {
        return Err(unsafe_entry("path goes through a symbolic link"));
    }

    let kind = entry.header().entry_type();
    let link = match kind {
        EntryType::Regular | EntryType::Continuous | EntryType::Directory => None,
        EntryType::Symlink => {
            let target = entry
                .link_name()
                .ok()
                .flatten()
                .ok_or_else(|| unsafe_entry("link has no target"))?;
            if resolve_link(&relative, &target).is_none() {
                return Err(unsafe_entry("symbolic link points outside the folder"));
            }
            links.insert(relative.clone());
            Some(target.into_owned())
        }
        EntryType::Link => {
            let target = entry
                .link_name()
                .ok()
                .flatten()
                .ok_or_else(|| unsafe_entry("link has no target"))?;
            let target = clean_relative(&target).filter(|target| !target.as_os_str().is_empty());
            let target =
                target.ok_or_else(|| unsafe_entry("hard link points outside the folder"))?;
            if target.ancestors().any(|ancestor| links.contains(ancestor)) {
                return Err(unsafe_entry("hard link goes through a symbolic link"));
            }
            Some(target)
        }
        _ => return Err(unsafe_entry("unsupported entry type")),
    };
    if relative.as_os_str().is_empty() && kind != EntryType::Directory {
        return Err(unsafe_entry("the folder itself must be a folder"));
    }
    Ok(PlannedEntry {
        relative,
        kind,
        link,
    })
}

/// Returns `path` without `.` components when it is relative and has no
/// `..`, or `None`.
fn clean_relative(path: &Path) -> Option<PathBuf> {
    let mut clean = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(clean)
}

/// Returns where a symbolic link at `link` (relative to the folder) to
/// `target` points, relative to the folder, or `None` when it points
/// outside.
pub(super) fn resolve_link(link: &Path, target: &Path) -> Option<PathBuf> {
    let mut resolved: Vec<&std::ffi::OsStr> = link
        .parent()
        .map(|parent| {
            parent
                .components()
                .filter_map(|c| match c {
                    Component::Normal(part) => Some(part),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    for component in target.components() {
        match component {
            Component::Normal(part) => resolved.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                resolved.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(resolved.iter().collect())
}
