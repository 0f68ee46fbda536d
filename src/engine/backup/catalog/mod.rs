//! The catalog of one service's backups in `STATE_DIR/backups/SERVICE/`:
//! each backup is a data file `ID.EXT` plus its manifest `ID.json`, both
//! mode 0600 in a 0700 folder. The manifest is written last, so a data
//! file without one is an unfinished backup: `list` ignores it and `prune`
//! removes it. An advisory lock on `.lock` keeps `prune` from removing
//! files that a running backup or restore uses: those take the lock
//! shared, `prune` takes it exclusive and waits for them.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

mod retention;

use super::drivers::{self, DriverContext, blocking};
use super::durable::{Staged, create_private_dir, hash_file, write_atomic};
use super::manifest::{BackupId, MANIFEST_FORMAT, Manifest};
use super::tools::{SecretLookup, ToolFinder, environment};
use super::{BackupError, Progress, ProgressFn};
use crate::config::{BackupSource, BackupSpec};

const LOCK_FILE: &str = ".lock";
const MANIFEST_EXTENSION: &str = "json";

/// The backups of one service.
#[derive(Clone)]
pub struct Catalog {
    service: String,
    dir: PathBuf,
    tools: ToolFinder,
    secrets: SecretLookup,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("service", &self.service)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Catalog {
    /// Returns the catalog of `service` under `state_dir`. Nothing is
    /// created until the first backup.
    pub fn open(state_dir: &Path, service: &str) -> Result<Catalog, BackupError> {
        if !valid_service_name(service) {
            return Err(BackupError::InvalidService {
                name: service.to_owned(),
            });
        }
        Ok(Catalog {
            service: service.to_owned(),
            dir: state_dir.join("backups").join(service),
            tools: ToolFinder::system(),
            secrets: environment,
        })
    }

    /// Replaces where external tools are looked up.
    #[cfg(test)]
    pub(crate) fn with_tools(mut self, tools: ToolFinder) -> Catalog {
        self.tools = tools;
        self
    }

    /// Replaces how passwords are read from `password_env` names.
    #[cfg(test)]
    pub(crate) fn with_secrets(mut self, secrets: SecretLookup) -> Catalog {
        self.secrets = secrets;
        self
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    /// Returns the catalog folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Returns the path of a backup's data file.
    pub fn data_path(&self, manifest: &Manifest) -> PathBuf {
        self.dir.join(&manifest.file)
    }

    /// Returns the complete backups, newest first. A damaged manifest is
    /// logged and left out.
    pub fn list(&self) -> Result<Vec<Manifest>, BackupError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(BackupError::io("read folder", &self.dir, source)),
        };
        let mut manifests = Vec::new();
        for entry in entries {
            let entry =
                entry.map_err(|source| BackupError::io("read folder", &self.dir, source))?;
            let name = entry.file_name();
            let Some(id) = name
                .to_str()
                .and_then(|name| name.strip_suffix(".json"))
                .and_then(|stem| BackupId::parse(stem).ok())
            else {
                continue;
            };
            match self.read_manifest(&id) {
                Ok(manifest) => manifests.push(manifest),
                Err(error) => {
                    tracing::warn!(service = %self.service, %id, %error, "skipping a backup");
                }
            }
        }
        manifests.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        Ok(manifests)
    }

    /// Returns the manifest of backup `id`.
    pub fn get(&self, id: &str) -> Result<Manifest, BackupError> {
        let id = BackupId::parse(id)?;
        if !self.manifest_path(&id).exists() {
            return Err(BackupError::NotFound {
                service: self.service.clone(),
                id: id.to_string(),
            });
        }
        self.read_manifest(&id)
    }

    /// Takes a backup of `spec`'s data. `commit` is the git commit deployed
    /// now, recorded in the manifest. On any error the catalog is left as
    /// it was.
    pub async fn create(
        &self,
        spec: &BackupSpec,
        commit: Option<&str>,
        progress: impl Fn(Progress) + Send + Sync + 'static,
    ) -> Result<Manifest, BackupError> {
        let created_at = SystemTime::now();
        let started = Instant::now();
        create_private_dir(&self.dir)?;
        let _lock = self.lock(false).await?;

        let driver = spec.driver();
        let id = loop {
            let id = BackupId::generate(created_at);
            let file = self.dir.join(Manifest::file_name(&id, driver));
            if !self.manifest_path(&id).exists() && !file.exists() {
                break id;
            }
        };
        let file = Manifest::file_name(&id, driver);
        let data_path = self.dir.join(&file);
        let context = self.context(spec, Arc::new(progress));

        let staged = Staged::new_in(&self.dir)?;
        let info = drivers::dump(&context, &spec.source, &staged).await?;
        let target = data_path.clone();
        blocking(move || staged.commit(&target, false)).await?;

        let manifest = Manifest {
            format: MANIFEST_FORMAT,
            id,
            service: self.service.clone(),
            driver,
            created_at,
            commit: commit.map(str::to_owned),
            file,
            size: info.digest.size,
            hash: info.digest.hash,
            tool_version: info.tool_version,
            server_version: info.server_version,
            // The manifest stores whole milliseconds.
            duration: Duration::from_millis(started.elapsed().as_millis() as u64),
            pinned: false,
        };
        if let Err(error) = self.write_manifest(&manifest, false).await {
            let _ = fs::remove_file(&data_path);
            return Err(error);
        }
        tracing::info!(service = %self.service, id = %manifest.id, size = manifest.size, "backup taken");
        Ok(manifest)
    }

    /// Recomputes the hash of backup `id` and compares it, and the size,
    /// with the manifest.
    pub async fn verify(&self, id: &str) -> Result<(), BackupError> {
        let manifest = self.get(id)?;
        self.check_data(&manifest, None).await
    }

    /// Replaces the data of `spec` with backup `id`. The hash is checked
    /// first and the tools must be able to read the backup, so a damaged
    /// backup is rejected before the live data is touched.
    pub async fn restore(
        &self,
        id: &str,
        spec: &BackupSpec,
        progress: impl Fn(Progress) + Send + Sync + 'static,
    ) -> Result<(), BackupError> {
        self.get(id)?;
        let _lock = self.lock(false).await?;
        let manifest = self.get(id)?;
        let context = self.context(spec, Arc::new(progress));
        // A directory restore checks every entry and hashes the archive
        // while it extracts into a staging folder, and it swaps that folder
        // in only after the last entry and a matching hash. So reading the
        // archive beforehand would repeat the work without protecting the
        // live folder more.
        let read_archive = !matches!(spec.source, BackupSource::Directory { .. });
        self.check_restorable(&manifest, spec, &context, read_archive)
            .await?;

        let data = self.data_path(&manifest);
        drivers::restore(&context, &spec.source, &manifest, &data).await?;
        tracing::info!(service = %self.service, id = %manifest.id, "backup restored");
        Ok(())
    }

    /// Runs the checks that [`Catalog::restore`] runs before it touches the
    /// live data: the driver, the size and hash, and that the tools can
    /// read the backup. Changes nothing. Returns the manifest.
    pub async fn check_restore(
        &self,
        id: &str,
        spec: &BackupSpec,
        progress: impl Fn(Progress) + Send + Sync + 'static,
    ) -> Result<Manifest, BackupError> {
        self.get(id)?;
        let _lock = self.lock(false).await?;
        let manifest = self.get(id)?;
        let context = self.context(spec, Arc::new(progress));
        self.check_restorable(&manifest, spec, &context, true)
            .await?;
        Ok(manifest)
    }

    /// Checks the driver and the size and hash of the data, and with
    /// `read_archive` that the tools can read the backup.
    async fn check_restorable(
        &self,
        manifest: &Manifest,
        spec: &BackupSpec,
        context: &DriverContext,
        read_archive: bool,
    ) -> Result<(), BackupError> {
        if manifest.driver != spec.driver() {
            return Err(BackupError::DriverMismatch {
                id: manifest.id.to_string(),
                backup: manifest.driver,
                configured: spec.driver(),
            });
        }
        if !read_archive {
            return self.check_size(manifest);
        }
        self.check_data(manifest, Some(context.progress.clone()))
            .await?;
        let data = self.data_path(manifest);
        drivers::check(context, &spec.source, manifest, &data).await
    }

    /// Marks backup `id` as pinned, so retention never removes it, or
    /// clears the mark.
    pub async fn pin(&self, id: &str, pinned: bool) -> Result<Manifest, BackupError> {
        self.get(id)?;
        let _lock = self.lock(false).await?;
        let mut manifest = self.get(id)?;
        manifest.pinned = pinned;
        self.write_manifest(&manifest, true).await?;
        Ok(manifest)
    }

    fn manifest_path(&self, id: &BackupId) -> PathBuf {
        self.dir.join(format!("{id}.{MANIFEST_EXTENSION}"))
    }

    /// Reads and checks the manifest of `id`: it must name this id, this
    /// service, and the data file name its driver gives.
    fn read_manifest(&self, id: &BackupId) -> Result<Manifest, BackupError> {
        let path = self.manifest_path(id);
        let damaged = |reason: String| BackupError::DamagedManifest {
            path: path.clone(),
            reason,
        };
        let text =
            fs::read_to_string(&path).map_err(|source| BackupError::io("read", &path, source))?;
        let manifest: Manifest =
            serde_json::from_str(&text).map_err(|error| damaged(error.to_string()))?;
        if manifest.id != *id {
            return Err(damaged(format!("it names backup `{}`", manifest.id)));
        }
        if manifest.service != self.service {
            return Err(damaged(format!("it names service `{}`", manifest.service)));
        }
        if manifest.file != Manifest::file_name(id, manifest.driver) {
            return Err(damaged(format!(
                "unexpected data file name `{}`",
                manifest.file
            )));
        }
        Ok(manifest)
    }

    async fn write_manifest(&self, manifest: &Manifest, replace: bool) -> Result<(), BackupError> {
        let path = self.manifest_path(&manifest.id);
        let json = serde_json::to_vec_pretty(manifest).expect("manifests serialize to JSON");
        blocking(move || write_atomic(&path, &json, replace)).await
    }

    /// Checks that the data file of `manifest` exists and has the recorded
    /// size and hash.
    /// Checks that the data file of `manifest` exists and has its size.
    fn check_size(&self, manifest: &Manifest) -> Result<(), BackupError> {
        let path = self.data_path(manifest);
        let id = manifest.id.to_string();
        match fs::metadata(&path) {
            Ok(metadata) if metadata.len() == manifest.size => Ok(()),
            Ok(metadata) => Err(BackupError::SizeMismatch {
                id,
                path,
                expected: manifest.size,
                actual: metadata.len(),
            }),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                Err(BackupError::DataMissing { id, path })
            }
            Err(source) => Err(BackupError::io("read", &path, source)),
        }
    }

    async fn check_data(
        &self,
        manifest: &Manifest,
        progress: Option<ProgressFn>,
    ) -> Result<(), BackupError> {
        let path = self.data_path(manifest);
        let manifest = manifest.clone();
        blocking(move || {
            let id = manifest.id.to_string();
            let size_error = |actual| BackupError::SizeMismatch {
                id: id.clone(),
                path: path.clone(),
                expected: manifest.size,
                actual,
            };
            let actual_size = match fs::metadata(&path) {
                Ok(metadata) => metadata.len(),
                Err(error) if error.kind() == io::ErrorKind::NotFound => {
                    return Err(BackupError::DataMissing { id, path });
                }
                Err(source) => return Err(BackupError::io("read", &path, source)),
            };
            if actual_size != manifest.size {
                return Err(size_error(actual_size));
            }
            let digest = hash_file(&path, progress)
                .map_err(|source| BackupError::io("read", &path, source))?;
            if digest.size != manifest.size {
                return Err(size_error(digest.size));
            }
            if digest.hash != manifest.hash {
                return Err(BackupError::HashMismatch {
                    id,
                    expected: manifest.hash,
                    actual: digest.hash,
                });
            }
            Ok(())
        })
        .await
    }

    fn context(&self, spec: &BackupSpec, progress: ProgressFn) -> DriverContext {
        DriverContext {
            dir: self.dir.clone(),
            tools: self.tools.clone(),
            secrets: self.secrets,
            progress,
            timeout: spec.timeout,
        }
    }

    /// Takes the catalog lock, shared or exclusive, waiting for it.
    async fn lock(&self, exclusive: bool) -> Result<File, BackupError> {
        create_private_dir(&self.dir)?;
        let path = self.dir.join(LOCK_FILE);
        blocking(move || {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&path)
                .map_err(|source| BackupError::io("open lock file", &path, source))?;
            let locked = if exclusive {
                file.lock()
            } else {
                file.lock_shared()
            };
            locked.map_err(|source| BackupError::io("lock", &path, source))?;
            Ok(file)
        })
        .await
    }
}

/// Tells whether `name` can name a catalog folder: the rule the
/// configuration applies to service names.
fn valid_service_name(name: &str) -> bool {
    name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}
