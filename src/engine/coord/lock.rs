//! Service locks: one advisory file lock per service under the state
//! folder. The operating system drops the lock when its holder exits, so a
//! crashed run never leaves a service stuck.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Holder of a service lock, as written into the lock file by the holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub user: String,
    pub host: String,
    pub pid: u32,
    /// When the holder took the lock, RFC 3339 in UTC.
    pub since: String,
}

impl Holder {
    /// Returns the holder record of this process.
    pub fn current() -> Holder {
        Holder {
            user: current_user(),
            host: rustix::system::uname()
                .nodename()
                .to_string_lossy()
                .into_owned(),
            pid: std::process::id(),
            since: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        }
    }

    fn encode(&self) -> String {
        format!(
            "user={}\nhost={}\npid={}\nsince={}\n",
            self.user, self.host, self.pid, self.since
        )
    }

    fn decode(text: &str) -> Option<Holder> {
        let field = |key: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
                .map(str::to_owned)
        };
        Some(Holder {
            user: field("user")?,
            host: field("host")?,
            pid: field("pid")?.parse().ok()?,
            since: field("since")?,
        })
    }
}

/// Returns the name of the user running this process: `$USER`, else
/// `$LOGNAME`, else the name `/etc/passwd` gives the uid, else `uid N`.
fn current_user() -> String {
    if let Ok(name) = std::env::var("USER").or_else(|_| std::env::var("LOGNAME"))
        && !name.is_empty()
    {
        return name;
    }
    let uid = rustix::process::getuid().as_raw();
    let from_passwd = std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|line| {
                let mut fields = line.split(':');
                let name = fields.next()?;
                let id = fields.nth(1)?.parse::<u32>().ok()?;
                (id == uid).then(|| name.to_owned())
            })
        });
    from_passwd.unwrap_or_else(|| format!("uid {uid}"))
}

impl LockError {
    /// Returns how to go on, when there is a known way.
    pub fn hint(&self) -> Option<String> {
        match self {
            LockError::Held { .. } => {
                Some("wait for that run to end; `rewind history` lists finished runs".to_owned())
            }
            LockError::Io { .. } => {
                Some("check that the state folder exists and is writable".to_owned())
            }
        }
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}@{} (pid {}) since {}",
            self.user, self.host, self.pid, self.since
        )
    }
}

/// Errors taking a service lock.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("service `{service}` is locked by {}", holder.as_ref().map_or("another rewind process".to_owned(), ToString::to_string))]
    Held {
        service: String,
        holder: Option<Holder>,
    },
    #[error("cannot use lock file `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// An exclusive lock on one service, released when dropped.
#[derive(Debug)]
pub struct ServiceLock {
    file: File,
    path: PathBuf,
}

impl ServiceLock {
    /// Takes the lock of `service` without waiting, or reports who holds it.
    pub fn acquire(state_dir: &Path, service: &str) -> Result<ServiceLock, LockError> {
        let dir = state_dir.join("locks");
        let path = dir.join(format!("{service}.lock"));
        let io_error = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(io_error)?;

        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_error)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(LockError::Held {
                    service: service.to_owned(),
                    holder: Holder::decode(&text),
                });
            }
            Err(TryLockError::Error(source)) => return Err(io_error(source)),
        }

        // Only the holder writes, so readers see either nothing or a whole record.
        file.set_len(0).map_err(io_error)?;
        file.rewind().map_err(io_error)?;
        file.write_all(Holder::current().encode().as_bytes())
            .map_err(io_error)?;
        file.sync_data().map_err(io_error)?;
        tracing::info!(service, path = %path.display(), "lock taken");
        Ok(ServiceLock { file, path })
    }
}

impl Drop for ServiceLock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
        tracing::info!(path = %self.path.display(), "lock released");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_acquire_names_the_holder() {
        let state = tempfile::tempdir().unwrap();
        let _first = ServiceLock::acquire(state.path(), "orders").unwrap();

        let error = ServiceLock::acquire(state.path(), "orders").unwrap_err();
        let LockError::Held { service, holder } = &error else {
            panic!("expected a held lock, got {error}");
        };
        let holder = holder.clone().expect("holder recorded");

        assert_eq!(service, "orders");
        assert_eq!(holder.pid, std::process::id());
        assert!(
            error
                .to_string()
                .contains(&format!("(pid {})", std::process::id()))
        );
    }

    #[test]
    fn lock_is_free_after_drop() {
        let state = tempfile::tempdir().unwrap();
        drop(ServiceLock::acquire(state.path(), "orders").unwrap());

        assert!(ServiceLock::acquire(state.path(), "orders").is_ok());
    }

    #[test]
    fn locks_of_two_services_are_independent() {
        let state = tempfile::tempdir().unwrap();
        let _orders = ServiceLock::acquire(state.path(), "orders").unwrap();

        assert!(ServiceLock::acquire(state.path(), "payments").is_ok());
    }
}
