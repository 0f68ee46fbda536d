//! Configuration errors. Each names the file, and where it can, the line,
//! the column and a hint for the fix.

use std::fmt;
use std::path::PathBuf;

/// An error found while locating, reading or checking `services.toml`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("no configuration file found (looked for {})", list_paths(searched))]
    NotFound { searched: Vec<PathBuf> },

    #[error("cannot read `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{}:{}:{}: {}", location.path.display(), location.line, location.column, message)]
    Invalid {
        location: Location,
        message: String,
        hint: Option<String>,
    },

    #[error("unknown service `{name}` in `{}`", path.display())]
    UnknownService {
        path: PathBuf,
        name: String,
        known: Vec<String>,
    },
}

/// A place in the configuration file, 1-based, with the text of its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub path: PathBuf,
    pub line: usize,
    pub column: usize,
    /// The whole line the error points into, for showing it under the message.
    pub source_line: String,
}

impl ConfigError {
    /// Returns how to fix the error, when there is a known fix.
    pub fn hint(&self) -> Option<String> {
        match self {
            ConfigError::NotFound { .. } => Some(
                "pass `--config PATH`, or run `rewind demo` to build an example setup".to_owned(),
            ),
            ConfigError::Read { .. } => Some("check the path and its permissions".to_owned()),
            ConfigError::Invalid { hint, .. } => hint.clone(),
            ConfigError::UnknownService { known, .. } => {
                Some(format!("known services: {}", known.join(", ")))
            }
        }
    }

    /// Returns the error as it is printed to a terminal: the message, the
    /// offending line with a caret under the column, and the hint.
    pub fn report(&self) -> String {
        let mut text = format!("error: {self}");
        if let ConfigError::Invalid { location, .. } = self {
            let gutter = location.line.to_string();
            let pad = " ".repeat(gutter.len());
            let caret = " ".repeat(location.column.saturating_sub(1));
            text.push_str(&format!(
                "\n{pad} |\n{gutter} | {}\n{pad} | {caret}^",
                location.source_line
            ));
        }
        if let Some(hint) = self.hint() {
            text.push_str(&format!("\nhint: {hint}"));
        }
        text
    }
}

fn list_paths(paths: &[PathBuf]) -> String {
    let quoted: Vec<String> = paths
        .iter()
        .map(|path| format!("`{}`", path.display()))
        .collect();
    quoted.join(", ")
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.path.display(), self.line, self.column)
    }
}
