use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("no configuration file found")]
    NotFound { searched: Vec<PathBuf> },
    #[error("unknown service `{name}`")]
    UnknownService {
        path: PathBuf,
        name: String,
        known: Vec<String>,
    },
}
