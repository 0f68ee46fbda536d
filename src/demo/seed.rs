//! The demo's data and backups. For each service with data, the releases
//! are replayed oldest first: the data is migrated to the release's schema,
//! the release's traffic is written, and a backup is taken that records the
//! release's commit. So each release has a backup taken while it was
//! deployed, and the data ends at the newest release's schema.
//!
//! NOTE: the backups are taken one after another while the demo is built,
//! so their times are seconds apart and not the times of the releases.

use color_eyre::eyre::{Result, WrapErr, bail, eyre};

use super::data;
use super::history::SERVICES;
use crate::config::{BackupSource, Config};
use crate::engine::backup::Catalog;
use crate::engine::versions;

/// Builds the data of every demo service that has a backup table in
/// `config` and takes one backup per release. Returns the number of
/// backups taken.
pub async fn build_all(config: &Config) -> Result<usize> {
    let mut backups_taken = 0;
    for history in SERVICES {
        let spec = config
            .service(history.name)
            .ok_or_else(|| eyre!("the demo configuration has no service `{}`", history.name))?;
        let Some(backup) = &spec.backup else {
            continue;
        };
        let path = match &backup.source {
            BackupSource::Sqlite { path } | BackupSource::Directory { path } => path,
            _ => bail!(
                "demo service `{}` must use the `sqlite` or `directory` backup driver",
                history.name
            ),
        };
        let catalog = Catalog::open(&config.state_dir, history.name)?;

        for release in history.releases {
            let Some(data_spec) = release.data_spec(history) else {
                bail!(
                    "demo service `{}` has a backup table, but its release {} keeps no data",
                    history.name,
                    release.version
                );
            };
            let traffic = release.data.as_ref().map_or(&[][..], |data| data.traffic);
            data::prepare(&data_spec, path)?;
            data::write(&data_spec, path, traffic)?;

            let commit = versions::resolve(&spec.deploy_dir, release.version)?;
            catalog
                .create(backup, Some(&commit), |_| {})
                .await
                .wrap_err_with(|| {
                    format!(
                        "failed to back up demo service `{}` at {}",
                        history.name, release.version
                    )
                })?;
            backups_taken += 1;
        }
        tracing::info!(service = history.name, path = %path.display(), "built demo data and backups");
    }
    Ok(backups_taken)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use super::*;
    use crate::demo::history::ServiceHistory;
    use crate::demo::repos;
    use crate::demo::template::{TEMPLATE, Target, Template};

    /// Builds the demo's repositories and configuration in `dir` and
    /// returns the loaded configuration.
    fn demo_config(dir: &Path) -> Config {
        repos::build_all(&dir.join("repos"), 1_800_000_000).unwrap();
        let template = Template::parse(TEMPLATE).unwrap();
        let ports: BTreeMap<String, u16> = template
            .ports()
            .keys()
            .zip(40001..)
            .map(|(name, port)| (name.clone(), port))
            .collect();
        let target = Target {
            dir,
            executable: Path::new("/bin/rewind"),
            ports: &ports,
        };
        let path = dir.join("services.toml");
        std::fs::write(&path, template.render(&target).unwrap()).unwrap();
        crate::config::load(&path).unwrap()
    }

    fn history(name: &str) -> &'static ServiceHistory {
        SERVICES
            .iter()
            .find(|history| history.name == name)
            .unwrap()
    }

    #[tokio::test]
    async fn one_backup_per_release_with_its_commit() {
        let dir = tempfile::tempdir().unwrap();
        let config = demo_config(dir.path());

        let backups_taken = build_all(&config).await.unwrap();

        assert_eq!(backups_taken, 5 + 5 + 4);
        for name in ["orders", "payments", "inventory"] {
            let spec = config.service(name).unwrap();
            let catalog = Catalog::open(&config.state_dir, name).unwrap();
            let mut commits: Vec<String> = catalog
                .list()
                .unwrap()
                .into_iter()
                .map(|manifest| manifest.commit.unwrap())
                .collect();
            commits.reverse();
            let expected: Vec<String> = history(name)
                .releases
                .iter()
                .map(|release| versions::resolve(&spec.deploy_dir, release.version).unwrap())
                .collect();

            assert_eq!(commits, expected, "{name}");
        }
        assert!(!config.state_dir.join("backups/gateway").exists());
    }

    #[tokio::test]
    async fn backup_of_older_release_has_its_schema() {
        let dir = tempfile::tempdir().unwrap();
        let config = demo_config(dir.path());
        build_all(&config).await.unwrap();
        let spec = config.service("orders").unwrap();
        let backup = spec.backup.as_ref().unwrap();
        let catalog = Catalog::open(&config.state_dir, "orders").unwrap();
        let v121 = versions::resolve(&spec.deploy_dir, "v1.2.1").unwrap();
        let manifest = catalog
            .list()
            .unwrap()
            .into_iter()
            .find(|manifest| manifest.commit.as_deref() == Some(v121.as_str()))
            .unwrap();
        let orders = history("orders");
        let older = orders.releases[3].data_spec(orders).unwrap();
        let newest = orders.releases[4].data_spec(orders).unwrap();
        let BackupSource::Sqlite { path } = &backup.source else {
            panic!("orders uses the sqlite driver");
        };

        let before = data::check(&older, path).unwrap_err();
        catalog
            .restore(manifest.id.as_str(), backup, |_| {})
            .await
            .unwrap();
        let after = data::check(&older, path);

        assert!(before.contains("no such column: charge_id"), "{before}");
        assert_eq!(after, Ok(3));
        assert!(data::check(&newest, path).is_err());
    }

    #[test]
    fn only_newest_orders_breaks_older_release() {
        let mut breaking = Vec::new();
        for history in SERVICES {
            for pair in history.releases.windows(2) {
                let (Some(older), Some(newer)) =
                    (pair[0].data_spec(history), pair[1].data_spec(history))
                else {
                    continue;
                };
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("data");
                data::prepare(&newer, &path).unwrap();
                data::prepare(&older, &path).unwrap();

                if data::check(&older, &path).is_err() {
                    breaking.push(format!("{} {}", history.name, pair[1].version));
                }
            }
        }

        assert_eq!(breaking, ["orders v1.3.0"]);
    }
}
