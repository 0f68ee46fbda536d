//! The `postgres` driver: `pg_dump --format=custom` streamed into the
//! catalog, and `pg_restore --clean --if-exists --single-transaction`, so a
//! failed restore rolls back and leaves the database as it was. The
//! password reaches the tools through a 0600 passfile named by
//! `PGPASSFILE`. A dump from a newer pg_dump major version than the local
//! pg_restore is rejected before anything changes.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::{DriverContext, DumpInfo};
use crate::config::DatabaseSpec;
use crate::engine::backup::BackupError;
use crate::engine::backup::durable::{HashingWriter, Staged};
use crate::engine::backup::manifest::Manifest;
use crate::engine::backup::pipe::Invocation;
use crate::engine::backup::tools::{
    self, SecretFile, Tool, blame_output, pgpass_line, postgres_major, run_tool,
};

/// Seconds libpq waits for a connection, unless `PGCONNECT_TIMEOUT` is set.
const CONNECT_TIMEOUT_SECONDS: &str = "10";

pub(super) async fn dump(
    context: &DriverContext,
    database: &DatabaseSpec,
    staged: &Staged,
) -> Result<DumpInfo, BackupError> {
    let pg_dump = context.tools.find(Tool::PgDump)?;
    let tool_version = tools::version(Tool::PgDump, &pg_dump).await?;
    let passfile = passfile(context, database)?;

    let invocation = Invocation {
        argv: vec![
            program(&pg_dump),
            "--format=custom".into(),
            "--no-password".into(),
            format!("--dbname={}", database.url),
        ],
        cwd: context.dir.clone(),
        env: connection_env(passfile.as_ref()),
        timeout: context.timeout,
    };
    let writer = HashingWriter::new(staged.reopen()?, Some(context.progress.clone()));
    let (writer, _) = run_tool(
        Tool::PgDump,
        &invocation,
        None,
        writer,
        Some(&context.progress),
    )
    .await
    .map_err(|error| blame_output(error, staged.path()))?;
    let (_, digest) = writer
        .finish()
        .map_err(|source| BackupError::io("write backup data to", staged.path(), source))?;

    // The archive header names the server version. Reading it also shows
    // that pg_restore can read the new dump.
    let server_version = match context.tools.find(Tool::PgRestore) {
        Ok(pg_restore) => archive_header(context, &pg_restore, staged.path())
            .await
            .ok()
            .and_then(|header| header.server_version),
        Err(_) => None,
    };
    Ok(DumpInfo {
        digest,
        tool_version: Some(tool_version),
        server_version,
    })
}

/// Checks that the local pg_restore is at least as new as the pg_dump that
/// made the backup and can read its table of contents.
pub(super) async fn check(
    context: &DriverContext,
    manifest: &Manifest,
    data: &Path,
) -> Result<(), BackupError> {
    let pg_restore = context.tools.find(Tool::PgRestore)?;
    let local_version = tools::version(Tool::PgRestore, &pg_restore).await?;
    let too_new = |backup_version: &str| {
        let backup = postgres_major(backup_version);
        let local = postgres_major(&local_version);
        matches!((backup, local), (Some(backup), Some(local)) if backup > local)
    };
    let reject = |backup_version: &str| BackupError::ToolTooOld {
        id: manifest.id.to_string(),
        backup_version: backup_version.to_owned(),
        local_version: local_version.clone(),
    };
    if let Some(recorded) = &manifest.tool_version
        && too_new(recorded)
    {
        return Err(reject(recorded));
    }

    let header = archive_header(context, &pg_restore, data)
        .await
        .map_err(|error| match error {
            BackupError::ToolFailed { stderr, .. } => BackupError::Unreadable {
                id: manifest.id.to_string(),
                tool: Tool::PgRestore.name(),
                detail: stderr.lines().last().unwrap_or("no output").to_owned(),
            },
            other => other,
        })?;
    match header.pg_dump_version {
        Some(dumped_by) if too_new(&dumped_by) => Err(reject(&dumped_by)),
        _ => Ok(()),
    }
}

pub(super) async fn restore(
    context: &DriverContext,
    database: &DatabaseSpec,
    data: &Path,
) -> Result<(), BackupError> {
    let pg_restore = context.tools.find(Tool::PgRestore)?;
    let passfile = passfile(context, database)?;
    let invocation = Invocation {
        argv: vec![
            program(&pg_restore),
            "--clean".into(),
            "--if-exists".into(),
            "--single-transaction".into(),
            "--no-password".into(),
            "--verbose".into(),
            format!("--dbname={}", database.url),
            data.to_string_lossy().into_owned(),
        ],
        cwd: context.dir.clone(),
        env: connection_env(passfile.as_ref()),
        timeout: context.timeout,
    };
    run_tool(
        Tool::PgRestore,
        &invocation,
        None,
        Vec::new(),
        Some(&context.progress),
    )
    .await?;
    Ok(())
}

/// Versions named in the header of a custom-format archive.
struct ArchiveHeader {
    server_version: Option<String>,
    pg_dump_version: Option<String>,
}

/// Runs `pg_restore --list` on `data` and reads the versions it prints.
async fn archive_header(
    context: &DriverContext,
    pg_restore: &Path,
    data: &Path,
) -> Result<ArchiveHeader, BackupError> {
    let invocation = Invocation {
        argv: vec![
            program(pg_restore),
            "--list".into(),
            data.to_string_lossy().into_owned(),
        ],
        cwd: context.dir.clone(),
        env: Vec::new(),
        timeout: context.timeout,
    };
    let (listing, _) = run_tool(Tool::PgRestore, &invocation, None, Vec::new(), None).await?;
    let listing = String::from_utf8_lossy(&listing);
    let field = |label: &str| {
        listing.lines().find_map(|line| {
            let value = line.trim_start_matches(';').trim().strip_prefix(label)?;
            Some(value.trim().to_owned())
        })
    };
    Ok(ArchiveHeader {
        server_version: field("Dumped from database version:"),
        pg_dump_version: field("Dumped by pg_dump version:"),
    })
}

/// Writes the password, when the service has one, to a 0600 passfile.
fn passfile(
    context: &DriverContext,
    database: &DatabaseSpec,
) -> Result<Option<SecretFile>, BackupError> {
    match tools::password(database, context.secrets)? {
        Some(password) => Ok(Some(SecretFile::write_in(
            &context.dir,
            &pgpass_line(&password),
        )?)),
        None => Ok(None),
    }
}

/// Environment for a libpq tool: the passfile, which `PGPASSWORD` would
/// override, and a connection timeout.
fn connection_env(passfile: Option<&SecretFile>) -> Vec<(String, Option<OsString>)> {
    let mut env = Vec::new();
    if let Some(passfile) = passfile {
        env.push(("PGPASSFILE".to_owned(), passfile.env_value()));
        env.push(("PGPASSWORD".to_owned(), None));
    }
    if std::env::var_os("PGCONNECT_TIMEOUT").is_none() {
        env.push((
            "PGCONNECT_TIMEOUT".to_owned(),
            Some(CONNECT_TIMEOUT_SECONDS.into()),
        ));
    }
    env
}

fn program(path: &Path) -> String {
    PathBuf::from(path).to_string_lossy().into_owned()
}
