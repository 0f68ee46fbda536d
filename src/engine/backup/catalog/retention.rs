//! Retention: which backups of a catalog `prune` removes, and the cleanup
//! of files that crashed runs left behind.

use std::fs;
use std::io;
use std::path::Path;

use super::Catalog;
use crate::engine::backup::BackupError;
use crate::engine::backup::drivers::blocking;
use crate::engine::backup::durable::{TEMP_PREFIX, sync_dir};
use crate::engine::backup::manifest::{BackupId, id_of_data_file};

impl Catalog {
    /// Removes old backups: of the backups that are neither pinned nor in
    /// `protected`, the newest `keep` stay (at least one). Pinned and
    /// protected backups always stay. Also removes data files without a
    /// manifest and temporary files of crashed runs. Waits for running
    /// backups and restores of this service. Returns the removed ids.
    pub async fn prune(
        &self,
        keep: usize,
        protected: &[impl AsRef<str>],
    ) -> Result<Vec<BackupId>, BackupError> {
        if !self.dir.is_dir() {
            return Ok(Vec::new());
        }
        let protected: Vec<String> = protected.iter().map(|id| id.as_ref().to_owned()).collect();
        let _lock = self.lock(true).await?;
        let catalog = self.clone();
        blocking(move || catalog.prune_locked(keep.max(1), &protected)).await
    }

    fn prune_locked(
        &self,
        keep: usize,
        protected: &[String],
    ) -> Result<Vec<BackupId>, BackupError> {
        let mut kept_unpinned = 0;
        let mut removed = Vec::new();
        for manifest in self.list()? {
            if manifest.pinned || protected.iter().any(|id| *id == manifest.id.as_str()) {
                continue;
            }
            if kept_unpinned < keep {
                kept_unpinned += 1;
                continue;
            }
            // The manifest goes first: a crash after it leaves a data file
            // without a manifest, which the next prune removes.
            let path = self.manifest_path(&manifest.id);
            fs::remove_file(&path).map_err(|source| BackupError::io("remove", &path, source))?;
            sync_dir(&self.dir)?;
            remove_if_present(&self.data_path(&manifest))?;
            tracing::info!(service = %self.service, id = %manifest.id, "backup removed by retention");
            removed.push(manifest.id);
        }

        let entries = fs::read_dir(&self.dir)
            .map_err(|source| BackupError::io("read folder", &self.dir, source))?;
        for entry in entries {
            let entry =
                entry.map_err(|source| BackupError::io("read folder", &self.dir, source))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let unfinished = match id_of_data_file(name) {
                Some(id) => !self.manifest_path(&id).exists(),
                None => name.starts_with(TEMP_PREFIX),
            };
            if unfinished && entry.file_type().is_ok_and(|kind| kind.is_file()) {
                tracing::info!(service = %self.service, file = name, "removing an unfinished backup file");
                remove_if_present(&entry.path())?;
            }
        }
        sync_dir(&self.dir)?;
        Ok(removed)
    }
}

fn remove_if_present(path: &Path) -> Result<(), BackupError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(BackupError::io("remove", path, source)),
    }
}
