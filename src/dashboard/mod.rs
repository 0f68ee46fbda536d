//! The terminal dashboard: state, update, view, panes, keymap and theme.

use crate::config::Config;

/// Opens the dashboard on `config` and runs it until the user quits.
pub async fn run(config: Config) -> color_eyre::Result<()> {
    let _ = config;
    todo!()
}
