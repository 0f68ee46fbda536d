//! Parses and checks the `[services.NAME.backup]` table. Every rejection
//! points at the offending key or value and gives the fix.

use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::Checker;
use crate::config::{BackupDriver, BackupSource, BackupSpec, ConfigError, DatabaseSpec};

const DEFAULT_KEEP: usize = 10;
const DEFAULT_BACKUP_TIMEOUT: Duration = Duration::from_secs(60 * 60);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBackup {
    driver: Spanned<String>,
    path: Option<Spanned<String>>,
    url: Option<Spanned<String>>,
    password_env: Option<Spanned<String>>,
    keep: Option<Spanned<i64>>,
    max_age: Option<Spanned<toml::Value>>,
    timeout: Option<Spanned<toml::Value>>,
}

impl Checker<'_> {
    pub(super) fn backup(&self, raw: &RawBackup, base: &Path) -> Result<BackupSpec, ConfigError> {
        let driver = self.backup_driver(&raw.driver)?;
        let source = match driver {
            BackupDriver::Sqlite | BackupDriver::Directory => {
                self.reject_key(driver, "url", raw.url.as_ref().map(Spanned::span), "path")?;
                self.reject_key(
                    driver,
                    "password_env",
                    raw.password_env.as_ref().map(Spanned::span),
                    "path",
                )?;
                let path = self.backup_path(driver, raw)?;
                let path = base.join(path.get_ref());
                self.check_path_kind(driver, raw, &path)?;
                if driver == BackupDriver::Sqlite {
                    BackupSource::Sqlite { path }
                } else {
                    BackupSource::Directory { path }
                }
            }
            BackupDriver::Postgres | BackupDriver::Mysql => {
                self.reject_key(driver, "path", raw.path.as_ref().map(Spanned::span), "url")?;
                let database = self.database(driver, raw)?;
                if driver == BackupDriver::Postgres {
                    BackupSource::Postgres(database)
                } else {
                    BackupSource::Mysql(database)
                }
            }
        };

        Ok(BackupSpec {
            source,
            keep: self.keep(raw.keep.as_ref())?,
            max_age: match &raw.max_age {
                Some(value) => Some(self.duration(Some(value), "max_age", Duration::ZERO)?),
                None => None,
            },
            timeout: self.duration(raw.timeout.as_ref(), "timeout", DEFAULT_BACKUP_TIMEOUT)?,
        })
    }

    fn backup_driver(&self, raw: &Spanned<String>) -> Result<BackupDriver, ConfigError> {
        BackupDriver::ALL
            .into_iter()
            .find(|driver| driver.as_str() == raw.get_ref())
            .ok_or_else(|| {
                self.error(
                    raw.span(),
                    format!("unknown backup driver `{}`", raw.get_ref()),
                    "use one of \"sqlite\", \"postgres\", \"mysql\" or \"directory\"",
                )
            })
    }

    /// Rejects a key that the driver does not read.
    fn reject_key(
        &self,
        driver: BackupDriver,
        key: &str,
        span: Option<Range<usize>>,
        instead: &str,
    ) -> Result<(), ConfigError> {
        match span {
            Some(span) => Err(self.error(
                span,
                format!("`{key}` does not apply to the `{driver}` driver"),
                &format!("the `{driver}` driver reads `{instead}`: remove `{key}`"),
            )),
            None => Ok(()),
        }
    }

    fn backup_path<'r>(
        &self,
        driver: BackupDriver,
        raw: &'r RawBackup,
    ) -> Result<&'r Spanned<String>, ConfigError> {
        let what = match driver {
            BackupDriver::Sqlite => "the database file",
            _ => "the folder to back up",
        };
        let Some(path) = &raw.path else {
            return Err(self.error(
                raw.driver.span(),
                format!("the `{driver}` driver needs `path`"),
                &format!("add `path`: {what}, relative to the folder of this file"),
            ));
        };
        if path.get_ref().trim().is_empty() {
            return Err(self.error(
                path.span(),
                "empty backup `path`".to_owned(),
                &format!("write {what}, relative to the folder of this file"),
            ));
        }
        Ok(path)
    }

    /// Rejects a path that exists but is not the kind of file the driver
    /// copies. A path that does not exist yet is accepted: a service may
    /// create its data after the configuration is written.
    fn check_path_kind(
        &self,
        driver: BackupDriver,
        raw: &RawBackup,
        path: &Path,
    ) -> Result<(), ConfigError> {
        let span = raw.path.as_ref().map_or(0..0, Spanned::span);
        let Ok(metadata) = std::fs::metadata(path) else {
            return Ok(());
        };
        if driver == BackupDriver::Sqlite && metadata.is_dir() {
            return Err(self.error(
                span,
                format!("backup path `{}` is a folder", path.display()),
                "the `sqlite` driver copies one database file: point `path` at it, \
                 or use driver = \"directory\"",
            ));
        }
        if driver == BackupDriver::Directory && !metadata.is_dir() {
            return Err(self.error(
                span,
                format!("backup path `{}` is not a folder", path.display()),
                "the `directory` driver copies a folder: point `path` at it, \
                 or use driver = \"sqlite\" for a database file",
            ));
        }
        Ok(())
    }

    fn database(&self, driver: BackupDriver, raw: &RawBackup) -> Result<DatabaseSpec, ConfigError> {
        let example = match driver {
            BackupDriver::Postgres => "\"postgres://app@127.0.0.1:5432/orders\"",
            _ => "\"mysql://app@127.0.0.1:3306/orders\"",
        };
        let Some(raw_url) = &raw.url else {
            return Err(self.error(
                raw.driver.span(),
                format!("the `{driver}` driver needs `url`"),
                &format!("add `url`, such as {example}"),
            ));
        };
        let text = raw_url.get_ref();
        let fail = |message: String, hint: &str| Err(self.error(raw_url.span(), message, hint));

        let url = match reqwest::Url::parse(text) {
            Ok(url) => url,
            Err(error) => {
                return fail(
                    format!("invalid database URL `{}`: {error}", redact(text)),
                    &format!("write a URL such as {example}"),
                );
            }
        };
        let schemes: &[&str] = match driver {
            BackupDriver::Postgres => &["postgres", "postgresql"],
            _ => &["mysql", "mariadb"],
        };
        if !schemes.contains(&url.scheme()) {
            return fail(
                format!(
                    "database URL scheme `{}` does not match the `{driver}` driver",
                    url.scheme()
                ),
                &format!("write a URL such as {example}"),
            );
        }

        let has_password_parameter = url.query_pairs().any(|(key, _)| key == "password");
        if url.password().is_some() || has_password_parameter {
            return fail(
                format!("database URL `{}` contains a password", redact_url(&url)),
                "remove the password from the URL and set `password_env` to the name of \
                 an environment variable that holds it",
            );
        }
        if driver == BackupDriver::Mysql && url.query().is_some() {
            return fail(
                format!("database URL `{text}` has query parameters"),
                "the `mysql` driver reads only user, host, port and database: \
                 remove the part after `?`",
            );
        }
        if driver == BackupDriver::Mysql && url.host_str().is_none_or(str::is_empty) {
            return fail(
                format!("database URL `{text}` names no host"),
                &format!("write a URL such as {example}"),
            );
        }
        let database = url.path().trim_start_matches('/');
        if database.is_empty() || database.contains('/') {
            return fail(
                format!("database URL `{text}` does not name one database"),
                &format!("end the URL with the database name, such as {example}"),
            );
        }

        let password_env = match &raw.password_env {
            Some(name) if !valid_env_name(name.get_ref()) => {
                return Err(self.error(
                    name.span(),
                    format!("invalid environment variable name `{}`", name.get_ref()),
                    "use letters, digits and `_`, not starting with a digit, \
                     such as \"ORDERS_DB_PASSWORD\"",
                ));
            }
            Some(name) => Some(name.get_ref().clone()),
            None => None,
        };
        Ok(DatabaseSpec { url, password_env })
    }

    fn keep(&self, raw: Option<&Spanned<i64>>) -> Result<usize, ConfigError> {
        let Some(raw) = raw else {
            return Ok(DEFAULT_KEEP);
        };
        let value = *raw.get_ref();
        usize::try_from(value)
            .ok()
            .filter(|keep| *keep >= 1)
            .ok_or_else(|| {
                self.error(
                    raw.span(),
                    format!("invalid `keep` `{value}`: must be a whole number of at least 1"),
                    "count the newest backups to keep, such as 10; the newest is always kept",
                )
            })
    }
}

/// Tells whether `name` can name an environment variable in a shell.
fn valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Returns `url` with the password and any `password` query parameter
/// replaced by `***`.
fn redact_url(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    if url.password().is_some() {
        let _ = shown.set_password(Some("***"));
    }
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(key, value)| {
                let value = if key == "password" {
                    "***".into()
                } else {
                    value
                };
                (key.into_owned(), value.into_owned())
            })
            .collect();
        shown.query_pairs_mut().clear().extend_pairs(pairs);
    }
    shown.to_string()
}

/// Replaces the password in the user part of a URL-like text with `***`,
/// so an error message never repeats a secret, even for a URL that does
/// not parse.
fn redact(text: &str) -> String {
    let Some(scheme_end) = text.find("://") else {
        return text.to_owned();
    };
    let authority_start = scheme_end + 3;
    let authority_end = text[authority_start..]
        .find(['/', '?', '#'])
        .map_or(text.len(), |at| authority_start + at);
    let authority = &text[authority_start..authority_end];
    let Some(at) = authority.rfind('@') else {
        return text.to_owned();
    };
    let Some(colon) = authority[..at].find(':') else {
        return text.to_owned();
    };
    format!(
        "{}***{}",
        &text[..authority_start + colon + 1],
        &text[authority_start + at..]
    )
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redact_hides_only_the_password() {
        assert_eq!(
            redact("postgres://u:secret@h:5/db"),
            "postgres://u:***@h:5/db"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("mysql://u:p@ss@h:x/db"), "mysql://u:***@h:x/db");
        assert_eq!(redact("no url"), "no url");
    }
}
