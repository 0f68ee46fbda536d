//! The demo folder: the marker file that identifies a folder as a demo, the
//! check that keeps the demo from deleting other files, and the removal of
//! an earlier demo before a rebuild.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use color_eyre::eyre::{Result, WrapErr, bail};

use super::process::{self, SUPERVISOR_PID_FILE};
use super::supervisor;

/// File in the root of every demo folder. A folder without it is never
/// removed.
pub const MARKER_FILE: &str = ".rewind-demo";

const MARKER_TEXT: &str = "This folder was built by `rewind demo`. The next `rewind demo` run \
                           with this folder stops its services, deletes it and builds it again.\n";

/// Subfolder for the git repositories.
pub const REPOS_DIR: &str = "repos";

/// Subfolder for pid files and service logs.
pub const RUN_DIR: &str = "run";

/// Makes `dir` absolute and empty except for the marker file. Creates a
/// missing folder, and accepts an empty one. An earlier demo has its
/// services stopped and is deleted first. Any other folder or file is an
/// error that names it, and so is an earlier demo whose supervisor still
/// runs. Returns the canonical path.
pub fn prepare(dir: &Path) -> Result<PathBuf> {
    let absolute = if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        std::env::current_dir()
            .wrap_err("failed to read the working folder")?
            .join(dir)
    };

    match std::fs::metadata(&absolute) {
        Ok(metadata) if !metadata.is_dir() => {
            bail!(
                "`{}` is not a folder; choose another folder with `--dir`",
                absolute.display()
            );
        }
        Ok(_) => {
            let canonical = canonicalize(&absolute)?;
            if canonical.join(MARKER_FILE).exists() {
                remove_earlier_demo(&canonical)?;
            } else if !is_empty(&canonical)? {
                bail!(
                    "`{}` exists and is not a demo folder (it has no `{MARKER_FILE}` file); \
                     choose another folder with `--dir`",
                    canonical.display()
                );
            }
        }
        Err(error) if error.kind() == ErrorKind::NotFound => {}
        Err(error) => {
            return Err(error).wrap_err_with(|| format!("failed to read `{}`", absolute.display()));
        }
    }

    std::fs::create_dir_all(&absolute)
        .wrap_err_with(|| format!("failed to create the demo folder `{}`", absolute.display()))?;
    let canonical = canonicalize(&absolute)?;
    std::fs::write(canonical.join(MARKER_FILE), MARKER_TEXT).wrap_err_with(|| {
        format!(
            "failed to write the marker file in `{}`",
            canonical.display()
        )
    })?;
    Ok(canonical)
}

/// Stops the services of the earlier demo in `dir` and deletes the folder.
fn remove_earlier_demo(dir: &Path) -> Result<()> {
    let run_dir = dir.join(RUN_DIR);

    let supervisor = process::read_pid_file(&run_dir.join(SUPERVISOR_PID_FILE))?;
    if let Some(pid) = supervisor
        && pid != std::process::id()
        && process::is_running(pid)
        && process::has_argument(pid, "demo")
    {
        bail!(
            "the demo in `{}` still runs (pid {pid}); quit it, or choose another folder with `--dir`",
            dir.display()
        );
    }

    supervisor::stop_all(&run_dir)?;
    tracing::info!(dir = %dir.display(), "removing the earlier demo");
    std::fs::remove_dir_all(dir)
        .wrap_err_with(|| format!("failed to delete the earlier demo `{}`", dir.display()))
}

fn is_empty(dir: &Path) -> Result<bool> {
    let mut entries =
        std::fs::read_dir(dir).wrap_err_with(|| format!("failed to list `{}`", dir.display()))?;
    Ok(entries.next().is_none())
}

fn canonicalize(path: &Path) -> Result<PathBuf> {
    path.canonicalize()
        .wrap_err_with(|| format!("failed to resolve `{}`", path.display()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::CommandExt;

    use super::*;

    #[test]
    fn prepare_creates_missing_dir() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("demo");

        let prepared = prepare(&dir).unwrap();

        assert_eq!(prepared, root.path().canonicalize().unwrap().join("demo"));
        assert!(prepared.join(MARKER_FILE).is_file());
    }

    #[test]
    fn prepare_accepts_empty_dir() {
        let root = tempfile::tempdir().unwrap();

        let prepared = prepare(root.path()).unwrap();

        assert!(prepared.join(MARKER_FILE).is_file());
    }

    #[test]
    fn prepare_rejects_foreign_dir() {
        let root = tempfile::tempdir().unwrap();
        let notes = root.path().join("notes.txt");
        std::fs::write(&notes, "keep me").unwrap();

        let error = prepare(root.path()).unwrap_err().to_string();

        let canonical = root.path().canonicalize().unwrap();
        assert!(
            error.contains(&format!("`{}`", canonical.display())),
            "{error}"
        );
        assert!(error.contains("--dir"), "{error}");
        assert!(notes.exists());
    }

    #[test]
    fn prepare_rejects_file() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("demo");
        std::fs::write(&file, "").unwrap();

        let error = prepare(&file).unwrap_err().to_string();

        assert!(error.contains("is not a folder"), "{error}");
        assert!(file.is_file());
    }

    #[test]
    fn prepare_replaces_earlier_demo() {
        let root = tempfile::tempdir().unwrap();
        let dir = prepare(&root.path().join("demo")).unwrap();
        let old_file = dir.join(REPOS_DIR).join("old.txt");
        std::fs::create_dir_all(old_file.parent().unwrap()).unwrap();
        std::fs::write(&old_file, "old").unwrap();

        let prepared = prepare(&dir).unwrap();

        assert_eq!(prepared, dir);
        assert!(!old_file.exists());
        assert!(prepared.join(MARKER_FILE).is_file());
    }

    #[test]
    fn prepare_ignores_dead_pids() {
        let root = tempfile::tempdir().unwrap();
        let dir = prepare(&root.path().join("demo")).unwrap();
        std::fs::create_dir_all(dir.join(RUN_DIR)).unwrap();
        // A dead supervisor and a pid that names no process.
        process::write_pid_file(
            &dir.join(RUN_DIR).join(SUPERVISOR_PID_FILE),
            i32::MAX as u32,
        )
        .unwrap();
        process::write_pid_file(&dir.join(RUN_DIR).join("orders.pid"), i32::MAX as u32 - 1)
            .unwrap();

        let prepared = prepare(&dir).unwrap();

        assert!(!prepared.join(RUN_DIR).exists());
    }

    #[test]
    fn prepare_rejects_running_demo() {
        let root = tempfile::tempdir().unwrap();
        let dir = prepare(&root.path().join("demo")).unwrap();
        std::fs::create_dir_all(dir.join(RUN_DIR)).unwrap();
        let mut supervisor = std::process::Command::new("sh")
            .args(["-c", "sleep 30; true", "demo"])
            .process_group(0)
            .spawn()
            .unwrap();
        process::write_pid_file(
            &dir.join(RUN_DIR).join(SUPERVISOR_PID_FILE),
            supervisor.id(),
        )
        .unwrap();

        // The child's command line reads `demo` only once it has exec'd.
        let cmdline = format!("/proc/{}/cmdline", supervisor.id());
        for _ in 0..200 {
            if std::fs::read(&cmdline).is_ok_and(|bytes| bytes.ends_with(b"demo\0")) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }

        let result = prepare(&dir);
        let group = rustix::process::Pid::from_child(&supervisor);
        rustix::process::kill_process_group(group, rustix::process::Signal::KILL).unwrap();
        supervisor.wait().unwrap();

        let error = result.unwrap_err().to_string();
        assert!(error.contains("still runs"), "{error}");
        assert!(
            error.contains(&format!("pid {}", supervisor.id())),
            "{error}"
        );
        assert!(dir.join(MARKER_FILE).is_file());
    }
}
