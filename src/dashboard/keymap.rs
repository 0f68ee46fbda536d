//! The key table. It maps keys to actions for each mode and pane, and the
//! same table fills the footer and the help overlay, so what is shown is
//! what works. Keys that change a service are hidden in read-only mode.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::app::{Mode, Pane};

/// Dashboard action bound to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    MoveUp,
    MoveDown,
    MoveTop,
    MoveBottom,
    NextPane,
    PreviousPane,
    ClearSelection,
    StartRollback,
    StartUndo,
    CancelRun,
    ResumeRun,
    AbortRun,
    TakeBackup,
    VerifyBackups,
    StartFilter,
    ToggleHelp,
    Quit,
    Confirm,
    Cancel,
    EditReason,
}

/// One row of the key table.
pub struct Binding {
    /// Keys as shown to the user.
    pub label: &'static str,
    pub action: Action,
    pub description: &'static str,
    /// Shorter description for the footer; empty keeps it out of the footer.
    pub short: &'static str,
    /// Panes where the binding works; empty means all panes.
    pub panes: &'static [Pane],
    /// True for keys that change a service, which read-only mode refuses.
    pub changes: bool,
}

const fn bind(
    label: &'static str,
    action: Action,
    description: &'static str,
    short: &'static str,
) -> Binding {
    Binding {
        label,
        action,
        description,
        short,
        panes: &[],
        changes: false,
    }
}

const fn change(
    label: &'static str,
    action: Action,
    description: &'static str,
    short: &'static str,
) -> Binding {
    Binding {
        changes: true,
        ..bind(label, action, description, short)
    }
}

const fn only(binding: Binding, panes: &'static [Pane]) -> Binding {
    Binding { panes, ..binding }
}

const LISTS: &[Pane] = &[
    Pane::Services,
    Pane::Versions,
    Pane::Backups,
    Pane::Run,
    Pane::History,
];

/// Keys of the normal mode, in the order the help lists them.
pub const NORMAL: &[Binding] = &[
    only(
        bind(
            "↑/k",
            Action::MoveUp,
            "move up (scroll in run and history)",
            "up",
        ),
        LISTS,
    ),
    only(
        bind(
            "↓/j",
            Action::MoveDown,
            "move down (scroll in run and history)",
            "down",
        ),
        LISTS,
    ),
    only(bind("g/G", Action::MoveTop, "first / last", ""), LISTS),
    bind(
        "Tab/S-Tab",
        Action::NextPane,
        "next / previous pane",
        "pane",
    ),
    change(
        "r",
        Action::StartRollback,
        "roll back to the selected (else previous) version",
        "roll back",
    ),
    change(
        "u",
        Action::StartUndo,
        "undo the last rollback of the service",
        "",
    ),
    change(
        "c",
        Action::CancelRun,
        "cancel the running rollback and revert it",
        "cancel run",
    ),
    change(
        "R",
        Action::ResumeRun,
        "resume the service's unfinished run",
        "",
    ),
    change(
        "A",
        Action::AbortRun,
        "abort the service's unfinished run",
        "",
    ),
    change(
        "b",
        Action::TakeBackup,
        "take a backup of the service's data",
        "backup",
    ),
    only(
        bind(
            "v",
            Action::VerifyBackups,
            "check the hashes of the service's backups",
            "verify",
        ),
        &[Pane::Backups],
    ),
    only(
        bind(
            "Esc",
            Action::ClearSelection,
            "clear the version or backup selection",
            "clear",
        ),
        &[Pane::Versions, Pane::Backups],
    ),
    bind("/", Action::StartFilter, "filter services", "filter"),
    bind("?", Action::ToggleHelp, "help", "help"),
    bind(
        "q/C-c",
        Action::Quit,
        "quit (asks while a rollback runs)",
        "quit",
    ),
];

/// Keys of the plan dialog.
pub const CONFIRM: &[Binding] = &[
    bind("y/Enter", Action::Confirm, "run the plan", "run"),
    bind("n/Esc", Action::Cancel, "cancel, nothing changes", "cancel"),
    bind(
        "w",
        Action::EditReason,
        "write why, for the audit log",
        "reason",
    ),
];

/// Keys while writing the reason in the plan dialog.
pub const REASON: &[Binding] = &[
    bind("Enter", Action::Confirm, "keep the reason", "keep"),
    bind("Esc", Action::Cancel, "drop the reason", "drop"),
];

/// Keys of the quit question.
pub const QUIT: &[Binding] = &[
    bind("y/Enter", Action::Confirm, "quit", "quit"),
    bind("n/Esc", Action::Cancel, "stay", "stay"),
];

/// Keys while typing a filter.
pub const FILTER: &[Binding] = &[
    bind("Enter", Action::Confirm, "keep filter", "keep"),
    bind("Esc", Action::Cancel, "clear filter", "clear"),
];

/// Keys of the help overlay.
pub const HELP: &[Binding] = &[bind("?/Esc", Action::Cancel, "close help", "close")];

/// Returns the bindings that work in `mode` with `pane` focused. Read-only
/// mode leaves out the keys that change a service.
pub fn bindings(mode: &Mode, pane: Pane, read_only: bool) -> Vec<&'static Binding> {
    let table = match mode {
        Mode::Normal | Mode::Planning { .. } => NORMAL,
        Mode::Confirm(_) | Mode::ConfirmRecovery(_) => CONFIRM,
        Mode::Reason(_) => REASON,
        Mode::ConfirmQuit => QUIT,
        Mode::Filter => FILTER,
        Mode::Help => HELP,
    };
    table
        .iter()
        .filter(|binding| binding.panes.is_empty() || binding.panes.contains(&pane))
        .filter(|binding| !(read_only && binding.changes))
        .collect()
}

/// Maps a key press to an action in `mode` with `pane` focused. Keys
/// outside the pane's bindings map to nothing; the caller refuses keys
/// that change a service in read-only mode.
pub fn action(mode: &Mode, pane: Pane, key: KeyEvent) -> Option<Action> {
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        return Some(Action::Quit);
    }
    let action = match mode {
        Mode::Confirm(_) | Mode::ConfirmRecovery(_) => match key.code {
            KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter => Action::Confirm,
            KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => Action::Cancel,
            KeyCode::Char('w') if matches!(mode, Mode::Confirm(_)) => Action::EditReason,
            _ => return None,
        },
        Mode::ConfirmQuit => match key.code {
            KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter => Action::Confirm,
            KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => Action::Cancel,
            _ => return None,
        },
        Mode::Filter | Mode::Reason(_) => match key.code {
            KeyCode::Enter => Action::Confirm,
            KeyCode::Esc => Action::Cancel,
            _ => return None,
        },
        Mode::Help => match key.code {
            KeyCode::Char('?') | KeyCode::Esc | KeyCode::Char('q') => Action::Cancel,
            _ => return None,
        },
        Mode::Normal | Mode::Planning { .. } => match key.code {
            KeyCode::Up | KeyCode::Char('k') => Action::MoveUp,
            KeyCode::Down | KeyCode::Char('j') => Action::MoveDown,
            KeyCode::Home | KeyCode::Char('g') => Action::MoveTop,
            KeyCode::End | KeyCode::Char('G') => Action::MoveBottom,
            KeyCode::Tab => Action::NextPane,
            KeyCode::BackTab => Action::PreviousPane,
            KeyCode::Char('r') => Action::StartRollback,
            KeyCode::Char('u') => Action::StartUndo,
            KeyCode::Char('c') => Action::CancelRun,
            KeyCode::Char('R') => Action::ResumeRun,
            KeyCode::Char('A') => Action::AbortRun,
            KeyCode::Char('b') => Action::TakeBackup,
            KeyCode::Char('v') => Action::VerifyBackups,
            KeyCode::Char('/') => Action::StartFilter,
            KeyCode::Char('?') => Action::ToggleHelp,
            KeyCode::Char('q') => Action::Quit,
            KeyCode::Esc => Action::ClearSelection,
            _ => return None,
        },
    };
    // A binding listed for some panes only works there.
    let allowed = NORMAL
        .iter()
        .filter(|binding| binding.action == action)
        .all(|binding| binding.panes.is_empty() || binding.panes.contains(&pane));
    allowed.then_some(action)
}

/// Tells whether `action` changes a service, so read-only mode refuses it.
pub fn changes_service(action: Action) -> bool {
    NORMAL
        .iter()
        .chain(CONFIRM)
        .any(|binding| binding.action == action && binding.changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn vim_and_arrow_keys_move() {
        for code in [KeyCode::Up, KeyCode::Char('k')] {
            let action = action(&Mode::Normal, Pane::Services, press(code));
            assert_eq!(action, Some(Action::MoveUp));
        }
        for code in [KeyCode::Down, KeyCode::Char('j')] {
            let action = action(&Mode::Normal, Pane::Services, press(code));
            assert_eq!(action, Some(Action::MoveDown));
        }
    }

    #[test]
    fn rollback_key_works_in_every_pane() {
        let key = press(KeyCode::Char('r'));

        for pane in Pane::ALL {
            assert_eq!(
                action(&Mode::Normal, pane, key),
                Some(Action::StartRollback),
                "{pane:?}"
            );
        }
    }

    #[test]
    fn confirm_accepts_y_and_enter() {
        let mode = Mode::ConfirmQuit;

        assert_eq!(
            action(&mode, Pane::Services, press(KeyCode::Char('y'))),
            Some(Action::Confirm)
        );
        assert_eq!(
            action(&mode, Pane::Services, press(KeyCode::Enter)),
            Some(Action::Confirm)
        );
        assert_eq!(
            action(&mode, Pane::Services, press(KeyCode::Esc)),
            Some(Action::Cancel)
        );
        assert_eq!(
            action(&mode, Pane::Services, press(KeyCode::Char('n'))),
            Some(Action::Cancel)
        );
        assert_eq!(
            action(&mode, Pane::Services, press(KeyCode::Char('r'))),
            None
        );
    }

    #[test]
    fn control_c_quits_in_every_mode() {
        let key = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);

        assert_eq!(
            action(&Mode::Filter, Pane::Services, key),
            Some(Action::Quit)
        );
        assert_eq!(action(&Mode::Help, Pane::Services, key), Some(Action::Quit));
    }

    #[test]
    fn filter_key_works_in_every_pane() {
        for pane in [Pane::Services, Pane::Versions, Pane::Health, Pane::Run] {
            let labels: Vec<&str> = bindings(&Mode::Normal, pane, false)
                .iter()
                .map(|binding| binding.label)
                .collect();
            assert!(labels.contains(&"/"), "`/` missing from {pane:?}");
            let key = KeyEvent::new(KeyCode::Char('/'), KeyModifiers::NONE);
            assert_eq!(action(&Mode::Normal, pane, key), Some(Action::StartFilter));
        }
    }

    #[test]
    fn read_only_hides_changing_keys() {
        let labels: Vec<&str> = bindings(&Mode::Normal, Pane::Services, true)
            .iter()
            .map(|binding| binding.label)
            .collect();

        for hidden in ["r", "u", "c", "R", "A", "b"] {
            assert!(
                !labels.contains(&hidden),
                "{hidden} shown in read-only mode"
            );
        }
        assert!(labels.contains(&"q/C-c"));
        assert!(changes_service(Action::StartRollback));
        assert!(!changes_service(Action::MoveUp));
    }

    #[test]
    fn quit_question_has_its_own_keys() {
        let labels: Vec<&str> = bindings(&Mode::ConfirmQuit, Pane::Run, false)
            .iter()
            .map(|binding| binding.short)
            .collect();

        assert_eq!(labels, ["quit", "stay"]);
    }
}
