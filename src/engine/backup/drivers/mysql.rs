//! The `mysql` driver, for MySQL and MariaDB. `mysqldump` takes a
//! consistent snapshot (`--single-transaction`) with routines, triggers and
//! events, compressed with zstd as it streams into the catalog, and
//! `mysql` replays it. User and password reach both tools through a 0600
//! `--defaults-extra-file`. A dump without mysqldump's closing
//! `-- Dump completed` line is rejected. The replay stops at the first
//! failed statement and fails. The statements before it stay applied,
//! because MySQL commits each DDL statement on its own.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use super::{DriverContext, DumpInfo, blocking};
use crate::config::DatabaseSpec;
use crate::engine::backup::durable::{HashingReader, HashingWriter, Staged};
use crate::engine::backup::manifest::Manifest;
use crate::engine::backup::pipe::Invocation;
use crate::engine::backup::tools::{
    self, SecretFile, Tool, blame_output, mysql_option_file, run_tool,
};
use crate::engine::backup::{BackupError, ProgressFn};

/// zstd level: the library default, fast with a fair ratio.
const ZSTD_LEVEL: i32 = 3;

/// The comment mysqldump writes as its last line when it finished.
const COMPLETED: &[u8] = b"-- Dump completed";

/// Bytes kept from the start of a dump, which names the server version.
const HEAD_BYTES: usize = 4096;

/// Bytes kept from the end of a dump, where the completion line is.
const TAIL_BYTES: usize = 256;

/// Port of a URL without one.
const DEFAULT_PORT: u16 = 3306;

pub(super) async fn dump(
    context: &DriverContext,
    database: &DatabaseSpec,
    staged: &Staged,
) -> Result<DumpInfo, BackupError> {
    let mysqldump = context.tools.find(Tool::MysqlDump)?;
    let tool_version = tools::version(Tool::MysqlDump, &mysqldump).await?;
    let (options, mut argv) = connection(context, database, &mysqldump)?;
    argv.extend(
        [
            "--single-transaction",
            "--routines",
            "--triggers",
            "--events",
            "--hex-blob",
            "--no-tablespaces",
            "--default-character-set=utf8mb4",
        ]
        .map(String::from),
    );
    argv.push(database_name(database));
    let invocation = Invocation {
        argv,
        cwd: context.dir.clone(),
        env: vec![("MYSQL_PWD".to_owned(), None)],
        timeout: context.timeout,
    };

    let write_error = |source| BackupError::io("write backup data to", staged.path(), source);
    let hashing = HashingWriter::new(staged.reopen()?, Some(context.progress.clone()));
    let mut encoder = zstd::Encoder::new(hashing, ZSTD_LEVEL).map_err(write_error)?;
    encoder.include_checksum(true).map_err(write_error)?;
    let (inspector, _) = run_tool(
        Tool::MysqlDump,
        &invocation,
        None,
        Inspector::new(encoder),
        Some(&context.progress),
    )
    .await
    .map_err(|error| blame_output(error, staged.path()))?;
    drop(options);

    if !inspector
        .tail
        .windows(COMPLETED.len())
        .any(|window| window == COMPLETED)
    {
        return Err(BackupError::IncompleteDump {
            tool: Tool::MysqlDump.name(),
            reason: "the output lacks the closing `-- Dump completed` line".to_owned(),
        });
    }
    let server_version = server_version(&inspector.head);
    let (_, digest) = inspector
        .inner
        .finish()
        .and_then(HashingWriter::finish)
        .map_err(write_error)?;
    Ok(DumpInfo {
        digest,
        tool_version: Some(tool_version),
        server_version,
    })
}

/// Decompresses the whole backup to check its zstd checksum and its
/// completion line, then checks that the server accepts the credentials.
pub(super) async fn check(
    context: &DriverContext,
    database: &DatabaseSpec,
    manifest: &Manifest,
    data: &Path,
) -> Result<(), BackupError> {
    let mysql = context.tools.find(Tool::MysqlClient)?;
    let path = data.to_path_buf();
    let id = manifest.id.to_string();
    blocking(move || {
        let unreadable = |detail: String| BackupError::Unreadable {
            id: id.clone(),
            tool: "zstd",
            detail,
        };
        let file = File::open(&path).map_err(|source| BackupError::io("open", &path, source))?;
        let decoder = zstd::Decoder::new(file).map_err(|error| unreadable(error.to_string()))?;
        let mut inspector = Inspector::new(io::sink());
        io::copy(&mut { decoder }, &mut inspector)
            .map_err(|error| unreadable(error.to_string()))?;
        if inspector
            .tail
            .windows(COMPLETED.len())
            .any(|window| window == COMPLETED)
        {
            Ok(())
        } else {
            Err(unreadable(
                "the dump lacks the closing `-- Dump completed` line".to_owned(),
            ))
        }
    })
    .await?;

    let (options, mut argv) = connection(context, database, &mysql)?;
    argv.extend(["--batch".to_owned(), "--execute=SELECT 1".to_owned()]);
    argv.push(database_name(database));
    let invocation = Invocation {
        argv,
        cwd: context.dir.clone(),
        env: vec![("MYSQL_PWD".to_owned(), None)],
        timeout: context.timeout,
    };
    run_tool(Tool::MysqlClient, &invocation, None, io::sink(), None).await?;
    drop(options);
    Ok(())
}

pub(super) async fn restore(
    context: &DriverContext,
    database: &DatabaseSpec,
    data: &Path,
) -> Result<(), BackupError> {
    let mysql = context.tools.find(Tool::MysqlClient)?;
    let (options, mut argv) = connection(context, database, &mysql)?;
    argv.extend([
        "--batch".to_owned(),
        "--default-character-set=utf8mb4".to_owned(),
    ]);
    argv.push(database_name(database));
    let invocation = Invocation {
        argv,
        cwd: context.dir.clone(),
        env: vec![("MYSQL_PWD".to_owned(), None)],
        timeout: context.timeout,
    };

    let input = open_dump(data, context.progress.clone())?;
    let (_, stderr) = run_tool(
        Tool::MysqlClient,
        &invocation,
        Some(input),
        io::sink(),
        Some(&context.progress),
    )
    .await?;
    drop(options);

    // The client exits non-zero on a failed statement; an `ERROR` line with
    // exit status 0 is treated as a failure too.
    if let Some(line) = stderr.lines().find(|line| line.starts_with("ERROR")) {
        return Err(BackupError::IncompleteDump {
            tool: Tool::MysqlClient.name(),
            reason: line.to_owned(),
        });
    }
    Ok(())
}

/// Opens a compressed dump for reading, reporting bytes read to `progress`.
fn open_dump(data: &Path, progress: ProgressFn) -> Result<Box<dyn Read + Send>, BackupError> {
    let file = File::open(data).map_err(|source| BackupError::io("open", data, source))?;
    let total = file.metadata().map(|metadata| metadata.len()).ok();
    let reader = HashingReader::new(file, total, Some(progress));
    let decoder =
        zstd::Decoder::new(reader).map_err(|source| BackupError::io("read", data, source))?;
    Ok(Box::new(decoder))
}

/// Writes the option file and returns it with the start of the argv that
/// connects to the server over TCP. The option file must stay alive until
/// the tool ends.
fn connection(
    context: &DriverContext,
    database: &DatabaseSpec,
    program: &Path,
) -> Result<(SecretFile, Vec<String>), BackupError> {
    let url = &database.url;
    let user = decode(url.username());
    let password = tools::password(database, context.secrets)?;
    let options = SecretFile::write_in(
        &context.dir,
        &mysql_option_file(
            (!user.is_empty()).then_some(user.as_str()),
            password.as_deref(),
        ),
    )?;
    // The URL writes an IPv6 address in brackets; the tools take it bare.
    let host = url
        .host_str()
        .unwrap_or("127.0.0.1")
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    // `--defaults-extra-file` must come first, or the tools ignore it.
    let argv = vec![
        program.to_string_lossy().into_owned(),
        format!("--defaults-extra-file={}", options.path().display()),
        "--protocol=TCP".to_owned(),
        format!("--host={host}"),
        format!("--port={}", url.port().unwrap_or(DEFAULT_PORT)),
    ];
    Ok((options, argv))
}

fn database_name(database: &DatabaseSpec) -> String {
    decode(database.url.path().trim_start_matches('/'))
}

/// Decodes `%XX` escapes of a URL part.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let escaped = (bytes[at] == b'%')
            .then(|| text.get(at + 1..at + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                at += 3;
            }
            None => {
                decoded.push(bytes[at]);
                at += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

/// Reads the server version from the header comment of a dump, such as
/// `-- Server version\t10.11.19-MariaDB-0+deb12u1`.
fn server_version(head: &[u8]) -> Option<String> {
    String::from_utf8_lossy(head).lines().find_map(|line| {
        let value = line.strip_prefix("-- Server version")?;
        Some(value.trim_matches([':', ' ', '\t']).to_owned())
    })
}

/// Passes a dump through to `inner`, keeping its first and last bytes.
struct Inspector<W> {
    inner: W,
    head: Vec<u8>,
    tail: Vec<u8>,
}

impl<W> Inspector<W> {
    fn new(inner: W) -> Self {
        Inspector {
            inner,
            head: Vec::with_capacity(HEAD_BYTES),
            tail: Vec::with_capacity(TAIL_BYTES * 2),
        }
    }
}

impl<W: Write> Write for Inspector<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        let passed = &buf[..written];
        let room = HEAD_BYTES.saturating_sub(self.head.len());
        self.head
            .extend_from_slice(&passed[..room.min(passed.len())]);
        self.tail.extend_from_slice(passed);
        if self.tail.len() > TAIL_BYTES {
            self.tail.drain(..self.tail.len() - TAIL_BYTES);
        }
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
