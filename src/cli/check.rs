//! `rewind check`: validation happens while loading, so reaching this
//! point means the configuration is valid.

use crate::config::Config;

/// Prints a one-line summary of a valid configuration and returns exit code 0.
pub fn run(config: &Config) -> i32 {
    let names: Vec<&str> = config.services.iter().map(|s| s.name.as_str()).collect();
    println!(
        "{}: ok, {} services ({})",
        config.path.display(),
        names.len(),
        names.join(", ")
    );
    super::EXIT_OK
}
