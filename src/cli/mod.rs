//! The command-line front end: one file per subcommand.

pub mod args;
