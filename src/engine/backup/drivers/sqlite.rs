//! The `sqlite` driver. Backups use SQLite's online backup API, so writers
//! may keep writing while a copy is taken. A restore writes the backup into
//! the live database through the same API, inside one write transaction.
//! So every connection reads either the old or the restored data, a crash
//! rolls back through the journal, and no stale `-wal` or `-shm` file is
//! left to be replayed over the restored pages. Renaming a new file into
//! place instead would leave a service's open connection writing to the
//! old, unlinked file while its `-wal` file stays beside the new one.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use super::{DriverContext, DumpInfo, blocking};
use crate::engine::backup::BackupError;
use crate::engine::backup::durable::{Staged, hash_file};
use crate::engine::backup::manifest::Manifest;

/// Pause between attempts while another connection holds a lock.
const BUSY_PAUSE: Duration = Duration::from_millis(50);

pub(super) async fn dump(
    context: &DriverContext,
    source: &Path,
    staged: &Staged,
) -> Result<DumpInfo, BackupError> {
    let source = source.to_path_buf();
    let target = staged.path().to_path_buf();
    let timeout = context.timeout;
    let progress = context.progress.clone();
    blocking(move || {
        if !source.is_file() {
            return Err(BackupError::SourceMissing { path: source });
        }
        let from = open(&source, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let mut to = open(&target, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        copy(&from, &mut to, &source, timeout)?;

        // A copy of a WAL database is marked as one. Switching the copy to
        // rollback journal mode lets it be opened read-only later without
        // creating `-wal` and `-shm` files in the catalog.
        to.pragma_update_and_check(None, "journal_mode", "DELETE", |_| Ok(()))
            .map_err(sqlite_error("set the journal mode of", &target))?;
        to.close()
            .map_err(|(_, source)| sqlite_error("close", &target)(source))?;

        let digest = hash_file(&target, Some(progress))
            .map_err(|source| BackupError::io("read", &target, source))?;
        Ok(DumpInfo {
            digest,
            tool_version: Some(format!("SQLite {}", rusqlite::version())),
            server_version: None,
        })
    })
    .await
}

/// Checks that the backup is an SQLite database that passes
/// `PRAGMA quick_check`.
pub(super) async fn check(manifest: &Manifest, data: &Path) -> Result<(), BackupError> {
    let data = data.to_path_buf();
    let id = manifest.id.to_string();
    blocking(move || {
        let unreadable = |detail: String| BackupError::Unreadable {
            id: id.clone(),
            tool: "sqlite",
            detail,
        };
        let backup = open_immutable(&data).map_err(|error| unreadable(error.to_string()))?;
        let verdict: String = backup
            .query_row("PRAGMA quick_check", [], |row| row.get(0))
            .map_err(|error| unreadable(error.to_string()))?;
        if verdict == "ok" {
            Ok(())
        } else {
            Err(unreadable(format!("quick_check reported `{verdict}`")))
        }
    })
    .await
}

pub(super) async fn restore(
    context: &DriverContext,
    data: &Path,
    live: &Path,
) -> Result<(), BackupError> {
    let data = data.to_path_buf();
    let live = live.to_path_buf();
    let timeout = context.timeout;
    blocking(move || {
        let folder = live.parent().unwrap_or(Path::new("/"));
        if !folder.is_dir() {
            return Err(BackupError::SourceMissing {
                path: folder.to_path_buf(),
            });
        }
        let backup = open_immutable(&data).map_err(sqlite_error("open the backup", &data))?;
        let mut target = open(
            &live,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        )?;
        // Reading the schema fails on a file that is not a database, before
        // anything is written to it.
        target
            .query_row("PRAGMA schema_version", [], |_| Ok(()))
            .map_err(sqlite_error("read", &live))?;
        copy(&backup, &mut target, &live, timeout)?;

        let mode: String = target
            .query_row("PRAGMA journal_mode", [], |row| row.get(0))
            .map_err(sqlite_error("read the journal mode of", &live))?;
        if mode.eq_ignore_ascii_case("wal") {
            target
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                .map_err(sqlite_error("checkpoint", &live))?;
        }
        target
            .close()
            .map_err(|(_, source)| sqlite_error("close", &live)(source))
    })
    .await
}

/// Copies every page of `from` into `to` in one step, retrying while
/// another connection holds a lock, for at most `timeout`.
fn copy(
    from: &Connection,
    to: &mut Connection,
    locked: &Path,
    timeout: Duration,
) -> Result<(), BackupError> {
    let started = Instant::now();
    let backup = Backup::new(from, to).map_err(sqlite_error("start a backup of", locked))?;
    loop {
        match backup.step(-1).map_err(sqlite_error("copy", locked))? {
            StepResult::Done => return Ok(()),
            StepResult::More => {}
            _busy_or_locked => {
                if started.elapsed() >= timeout {
                    return Err(BackupError::Busy {
                        path: locked.to_path_buf(),
                        waited: started.elapsed(),
                    });
                }
                std::thread::sleep(BUSY_PAUSE);
            }
        }
    }
}

fn open(path: &Path, flags: OpenFlags) -> Result<Connection, BackupError> {
    let connection = Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(sqlite_error("open", path))?;
    connection
        .busy_timeout(BUSY_PAUSE)
        .map_err(sqlite_error("configure", path))?;
    Ok(connection)
}

/// Opens a backup file read-only as immutable, so SQLite takes no locks and
/// creates no `-wal`, `-shm` or journal file beside it.
fn open_immutable(path: &Path) -> rusqlite::Result<Connection> {
    let mut uri = String::from("file:");
    for byte in path.as_os_str().as_encoded_bytes() {
        match byte {
            b'%' | b'?' | b'#' => uri.push_str(&format!("%{byte:02X}")),
            _ if byte.is_ascii() => uri.push(char::from(*byte)),
            _ => uri.push_str(&format!("%{byte:02X}")),
        }
    }
    uri.push_str("?immutable=1");
    Connection::open_with_flags(
        uri,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
}

fn sqlite_error(action: &'static str, path: &Path) -> impl Fn(rusqlite::Error) -> BackupError {
    let path: PathBuf = path.to_path_buf();
    move |source| BackupError::Sqlite {
        action,
        path: path.clone(),
        source,
    }
}
