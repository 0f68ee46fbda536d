use std::path::Path;
use std::time::Duration;

use super::{BackupDriver, BackupSource, ConfigError, DatabaseSpec, parse};

/// Makes a folder holding `services.toml`'s neighbours: a git working tree
/// `repo`, and a plain folder `plain`.
fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    git2::Repository::init(dir.path().join("repo")).unwrap();
    std::fs::create_dir(dir.path().join("plain")).unwrap();
    dir
}

fn service(name: &str, extra: &str) -> String {
    format!(
        "[services.{name}]\n\
         deploy_dir = \"repo\"\n\
         {extra}\n\
         [services.{name}.health]\n\
         url = \"http://127.0.0.1:9/health\"\n\
         [services.{name}.restart]\n\
         command = [\"true\"]\n"
    )
}

fn check(dir: &Path, text: &str) -> Result<super::Config, ConfigError> {
    parse(&dir.join("services.toml"), text)
}

/// Returns line, column and message of an `Invalid` error.
fn invalid(dir: &Path, text: &str) -> (usize, usize, String, String) {
    match check(dir, text) {
        Err(ConfigError::Invalid {
            location,
            message,
            hint,
        }) => (
            location.line,
            location.column,
            message,
            hint.unwrap_or_default(),
        ),
        Err(other) => panic!("expected an invalid-config error, got {other}"),
        Ok(_) => panic!("expected an error for:\n{text}"),
    }
}

#[test]
fn defaults_follow_kubernetes_probes() {
    let dir = fixture();
    let config = check(dir.path(), &service("orders", "")).unwrap();
    let orders = config.service("orders").unwrap();

    assert_eq!(orders.health.interval, Duration::from_secs(10));
    assert_eq!(orders.health.timeout, Duration::from_secs(1));
    assert_eq!(orders.health.failure_threshold, 3);
    assert_eq!(orders.health.success_threshold, 1);
    assert_eq!(orders.restart.timeout, Duration::from_secs(30));
    assert_eq!(orders.deploy_dir, dir.path().join("repo"));
}

#[test]
fn services_keep_file_order() {
    let dir = fixture();
    let text = format!(
        "{}{}{}",
        service("zeta", ""),
        service("alpha", ""),
        service("mid", "")
    );
    let config = check(dir.path(), &text).unwrap();
    let names: Vec<&str> = config.services.iter().map(|s| s.name.as_str()).collect();

    assert_eq!(names, ["zeta", "alpha", "mid"]);
}

#[test]
fn state_dir_is_relative_to_config_folder() {
    let dir = fixture();
    let text = format!("state_dir = \"var/state\"\n{}", service("orders", ""));
    let config = check(dir.path(), &text).unwrap();

    assert_eq!(config.state_dir, dir.path().join("var/state"));
}

#[test]
fn durations_parse_human_units() {
    let dir = fixture();
    let text = service("orders", "").replace(
        "url = ",
        "interval = \"1m 30s\"\ntimeout = \"250ms\"\nurl = ",
    );
    let config = check(dir.path(), &text).unwrap();

    assert_eq!(config.services[0].health.interval, Duration::from_secs(90));
    assert_eq!(
        config.services[0].health.timeout,
        Duration::from_millis(250)
    );
}

#[test]
fn unknown_key_is_rejected_with_position() {
    let dir = fixture();
    let text = service("orders", "colour = \"blue\"");
    let (line, column, message, hint) = invalid(dir.path(), &text);

    assert_eq!((line, column), (3, 1));
    assert!(message.contains("unknown field `colour`"), "{message}");
    assert!(hint.contains("remove the key"), "{hint}");
}

#[test]
fn table_as_value_gets_table_hint() {
    let dir = fixture();
    let text = "[services.orders]\n\
                deploy_dir = \"repo\"\n\
                restart = [\"true\"]\n\
                [services.orders.health]\n\
                url = \"http://127.0.0.1:9/health\"\n";
    let (line, _, message, hint) = invalid(dir.path(), text);

    assert_eq!(line, 3);
    assert!(message.contains("invalid type"), "{message}");
    assert_eq!(
        hint,
        "`restart` is a table: write `[services.NAME.restart]` on its own line and \
         its keys below it, as services.toml in the rewind repository shows"
    );
}

#[test]
fn wrong_type_hint_names_key() {
    let dir = fixture();
    let text = service("orders", "branch = 3");
    let (line, column, message, hint) = invalid(dir.path(), &text);

    assert_eq!((line, column), (3, 10));
    assert!(message.contains("invalid type: integer `3`"), "{message}");
    assert_eq!(
        hint,
        "`branch` has a value of the wrong type. services.toml in the rewind \
         repository shows the form of every setting"
    );
}

#[test]
fn wrong_type_without_key_gets_generic_hint() {
    let dir = fixture();
    let text = service("orders", "depends_on = [\n  3,\n]");
    let (line, column, message, hint) = invalid(dir.path(), &text);

    assert_eq!((line, column), (4, 3));
    assert!(message.contains("invalid type: integer `3`"), "{message}");
    assert_eq!(
        hint,
        "this value has the wrong type. services.toml in the rewind \
         repository shows the form of every setting"
    );
}

#[test]
fn duplicate_service_is_rejected() {
    let dir = fixture();
    let text = format!("{}{}", service("orders", ""), service("orders", ""));
    let (line, _, message, hint) = invalid(dir.path(), &text);

    assert_eq!(line, 8);
    assert!(message.contains("duplicate key"), "{message}");
    assert!(hint.contains("may appear once"), "{hint}");
}

#[test]
fn unknown_dependency_is_rejected() {
    let dir = fixture();
    let text = service("orders", "depends_on = [\"billing\"]");
    let (line, column, message, _) = invalid(dir.path(), &text);

    assert_eq!((line, column), (3, 15));
    assert_eq!(
        message,
        "service `orders` depends on unknown service `billing`"
    );
}

#[test]
fn dependency_cycle_is_printed() {
    let dir = fixture();
    let text = format!(
        "{}{}{}",
        service("a", "depends_on = [\"b\"]"),
        service("b", "depends_on = [\"c\"]"),
        service("c", "depends_on = [\"a\"]"),
    );
    let (line, _, message, _) = invalid(dir.path(), &text);

    assert_eq!(message, "dependency cycle: a -> b -> c -> a");
    assert_eq!(line, 3);
}

#[test]
fn self_dependency_is_rejected() {
    let dir = fixture();
    let text = service("a", "depends_on = [\"a\"]");
    let (_, _, message, _) = invalid(dir.path(), &text);

    assert_eq!(message, "service `a` depends on itself");
}

#[test]
fn missing_deploy_dir_is_rejected() {
    let dir = fixture();
    let text = service("orders", "").replace("\"repo\"", "\"gone\"");
    let (line, column, message, _) = invalid(dir.path(), &text);

    assert_eq!((line, column), (2, 14));
    assert_eq!(
        message,
        format!(
            "deploy directory `{}` does not exist",
            dir.path().join("gone").display()
        )
    );
}

#[test]
fn plain_folder_is_not_a_work_tree() {
    let dir = fixture();
    let text = service("orders", "").replace("\"repo\"", "\"plain\"");
    let (_, _, message, _) = invalid(dir.path(), &text);

    assert!(message.ends_with("is not a git working tree"), "{message}");
}

#[test]
fn unparsable_url_is_rejected() {
    let dir = fixture();
    let text = service("orders", "").replace("http://127.0.0.1:9/health", "127.0.0.1 health");
    let (line, column, message, _) = invalid(dir.path(), &text);

    assert_eq!((line, column), (5, 7));
    assert!(
        message.starts_with("invalid health URL `127.0.0.1 health`"),
        "{message}"
    );
}

#[test]
fn non_http_url_is_rejected() {
    let dir = fixture();
    let text = service("orders", "").replace("http://127.0.0.1:9/health", "ftp://host/x");
    let (_, _, message, _) = invalid(dir.path(), &text);

    assert_eq!(
        message,
        "invalid health URL `ftp://host/x`: not an http or https URL"
    );
}

#[test]
fn zero_and_negative_values_are_rejected() {
    let dir = fixture();
    let cases = [
        ("interval = \"0s\"", "`interval` must be greater than zero"),
        (
            "interval = \"-1s\"",
            "invalid duration `-1s` for `interval`",
        ),
        (
            "interval = 10",
            "invalid duration `10` for `interval`: expected a string",
        ),
        ("timeout = \"0ms\"", "`timeout` must be greater than zero"),
        ("failure_threshold = 0", "invalid `failure_threshold` `0`"),
        ("failure_threshold = -2", "invalid `failure_threshold` `-2`"),
        ("success_threshold = 0", "invalid `success_threshold` `0`"),
    ];
    for (setting, expected) in cases {
        let text = service("orders", "").replace("url = ", &format!("{setting}\nurl = "));
        let (line, column, message, _) = invalid(dir.path(), &text);

        assert!(message.starts_with(expected), "{setting}: {message}");
        assert_eq!(line, 5, "{setting}");
        assert_eq!(column, setting.find('=').unwrap() + 3, "{setting}");
    }
}

#[test]
fn empty_restart_command_is_rejected() {
    for command in ["[]", "[\"\"]", "[\"  \"]"] {
        let dir = fixture();
        let text = service("orders", "").replace("[\"true\"]", command);
        let (line, column, message, hint) = invalid(dir.path(), &text);

        assert_eq!((line, column), (7, 11), "{command}");
        assert_eq!(message, "empty restart command");
        assert!(hint.contains("[\"systemctl\""), "{hint}");
    }
}

#[test]
fn data_strategy_needs_backup_table() {
    let dir = fixture();
    let text = format!(
        "{}[services.orders.rollback]\nstrategy = \"code+data\"\n",
        service("orders", "")
    );
    let (line, column, message, hint) = invalid(dir.path(), &text);

    assert_eq!((line, column), (9, 12));
    assert_eq!(
        message,
        "strategy `code+data` of `orders` restores data, but the service has no backup table"
    );
    assert!(hint.contains("[services.orders.backup]"), "{hint}");
}

#[test]
fn unknown_strategy_is_rejected() {
    let dir = fixture();
    let text = format!(
        "{}[services.orders.rollback]\nstrategy = \"yolo\"\n",
        service("orders", "")
    );
    let (_, _, message, _) = invalid(dir.path(), &text);

    assert_eq!(message, "unknown rollback strategy `yolo`");
}

#[test]
fn service_name_must_be_path_safe() {
    let dir = fixture();
    let text = service("\"../etc\"", "");
    let (_, _, message, _) = invalid(dir.path(), &text);

    assert_eq!(message, "invalid service name `../etc`");
}

#[test]
fn missing_url_is_rejected() {
    let dir = fixture();
    let text = service("orders", "").replace("url = \"http://127.0.0.1:9/health\"", "");
    let (line, _, message, _) = invalid(dir.path(), &text);

    assert_eq!(line, 4);
    assert!(message.contains("missing field `url`"), "{message}");
}

#[test]
fn report_shows_line_and_caret() {
    let dir = fixture();
    let text = service("orders", "depends_on = [\"billing\"]");
    let report = check(dir.path(), &text).unwrap_err().report();

    assert!(
        report.contains("services.toml:3:15: service `orders`"),
        "{report}"
    );
    assert!(
        report.contains("3 | depends_on = [\"billing\"]"),
        "{report}"
    );
    assert!(report.contains("  |               ^"), "{report}");
    assert!(
        report.contains("hint: declare `[services.billing]`"),
        "{report}"
    );
}

#[test]
fn restart_env_and_settle_parse() {
    let dir = fixture();
    let text = format!(
        "read_only = true\n{}\
         [services.orders.restart.env]\nRUST_LOG = \"info\"\n\
         [services.orders.rollback]\nsettle = \"0s\"\n",
        service("orders", "")
    );
    let config = check(dir.path(), &text).unwrap();
    let orders = &config.services[0];

    assert!(config.read_only);
    assert_eq!(
        orders.restart.env.get("RUST_LOG").map(String::as_str),
        Some("info")
    );
    assert_eq!(orders.rollback.settle, Duration::ZERO);
}

#[test]
fn settle_defaults_to_thirty_seconds() {
    let dir = fixture();
    let config = check(dir.path(), &service("orders", "")).unwrap();

    assert_eq!(config.services[0].rollback.settle, Duration::from_secs(30));
    assert!(!config.read_only);
}

#[test]
fn env_name_with_equals_is_rejected() {
    let dir = fixture();
    let text = format!(
        "{}[services.orders.restart.env]\n\"A=B\" = \"x\"\n",
        service("orders", "")
    );
    let (line, column, message, _) = invalid(dir.path(), &text);

    assert_eq!((line, column), (9, 1));
    assert_eq!(message, "invalid environment variable name `A=B`");
}

/// Returns the `orders` service with a backup table holding `keys`, which
/// start on line 9.
fn with_backup(keys: &str) -> String {
    format!(
        "{}[services.orders.backup]\n{keys}\n",
        service("orders", "")
    )
}

#[test]
fn backup_defaults_keep_ten() {
    let dir = fixture();
    let text = with_backup("driver = \"sqlite\"\npath = \"data/app.db\"");
    let config = check(dir.path(), &text).unwrap();
    let backup = config.services[0].backup.clone().unwrap();

    assert_eq!(
        backup.source,
        BackupSource::Sqlite {
            path: dir.path().join("data/app.db")
        }
    );
    assert_eq!(backup.driver(), BackupDriver::Sqlite);
    assert_eq!(backup.keep, 10);
    assert_eq!(backup.max_age, None);
    assert_eq!(backup.timeout, Duration::from_secs(3600));
}

#[test]
fn service_without_backup_table_has_none() {
    let dir = fixture();
    let config = check(dir.path(), &service("orders", "")).unwrap();

    assert_eq!(config.services[0].backup, None);
}

#[test]
fn backup_settings_parse() {
    let dir = fixture();
    let text = with_backup(
        "driver = \"postgres\"\n\
         url = \"postgres://app@127.0.0.1:5432/orders\"\n\
         password_env = \"ORDERS_DB_PASSWORD\"\n\
         keep = 3\nmax_age = \"24h\"\ntimeout = \"10m\"",
    );
    let config = check(dir.path(), &text).unwrap();
    let backup = config.services[0].backup.clone().unwrap();

    assert_eq!(
        backup.source,
        BackupSource::Postgres(DatabaseSpec {
            url: reqwest::Url::parse("postgres://app@127.0.0.1:5432/orders").unwrap(),
            password_env: Some("ORDERS_DB_PASSWORD".to_owned()),
        })
    );
    assert_eq!(backup.keep, 3);
    assert_eq!(backup.max_age, Some(Duration::from_secs(24 * 3600)));
    assert_eq!(backup.timeout, Duration::from_secs(600));
}

#[test]
fn backup_directory_and_mysql_parse() {
    let dir = fixture();
    let text = with_backup("driver = \"directory\"\npath = \"plain\"");
    let config = check(dir.path(), &text).unwrap();
    assert_eq!(
        config.services[0].backup.as_ref().unwrap().source,
        BackupSource::Directory {
            path: dir.path().join("plain")
        }
    );

    let text = with_backup("driver = \"mysql\"\nurl = \"mariadb://app@[::1]:3307/shop\"");
    let config = check(dir.path(), &text).unwrap();
    let backup = config.services[0].backup.as_ref().unwrap();
    assert_eq!(backup.driver(), BackupDriver::Mysql);
}

#[test]
fn backup_password_in_url_is_rejected() {
    let dir = fixture();
    let cases = [
        "postgres://app:s3cret@127.0.0.1/orders",
        "postgres://app@127.0.0.1/orders?password=s3cret",
    ];
    for url in cases {
        let text = with_backup(&format!("driver = \"postgres\"\nurl = \"{url}\""));
        let (line, column, message, hint) = invalid(dir.path(), &text);

        assert_eq!((line, column), (10, 7), "{url}");
        assert!(message.ends_with("contains a password"), "{message}");
        assert!(message.contains("***"), "{message}");
        assert!(!message.contains("s3cret"), "{message}");
        assert!(hint.contains("set `password_env`"), "{hint}");
    }
}

#[test]
fn backup_unparsable_url_hides_password() {
    let dir = fixture();
    let text = with_backup("driver = \"mysql\"\nurl = \"mysql://app:s3cret@host:port/db\"");
    let (_, _, message, _) = invalid(dir.path(), &text);

    assert!(
        message.starts_with("invalid database URL `mysql://app:***@host:port/db`"),
        "{message}"
    );
}

#[test]
fn backup_unknown_driver_is_rejected() {
    let dir = fixture();
    let text = with_backup("driver = \"oracle\"");
    let (line, column, message, hint) = invalid(dir.path(), &text);

    assert_eq!((line, column), (9, 10));
    assert_eq!(message, "unknown backup driver `oracle`");
    assert!(hint.contains("\"directory\""), "{hint}");
}

#[test]
fn backup_unknown_key_is_rejected() {
    let dir = fixture();
    let text = with_backup("driver = \"sqlite\"\npath = \"app.db\"\ncompress = true");
    let (line, column, message, hint) = invalid(dir.path(), &text);

    assert_eq!((line, column), (11, 1));
    assert!(message.contains("unknown field `compress`"), "{message}");
    assert!(hint.contains("remove the key"), "{hint}");
}

#[test]
fn backup_key_of_other_driver_is_rejected() {
    let dir = fixture();
    let cases = [
        (
            "driver = \"sqlite\"\npath = \"a.db\"\nurl = \"postgres://h/db\"",
            "`url` does not apply to the `sqlite` driver",
        ),
        (
            "driver = \"directory\"\npath = \"plain\"\npassword_env = \"X\"",
            "`password_env` does not apply to the `directory` driver",
        ),
        (
            "driver = \"postgres\"\nurl = \"postgres://h/db\"\npath = \"a.db\"",
            "`path` does not apply to the `postgres` driver",
        ),
    ];
    for (keys, expected) in cases {
        let (line, column, message, _) = invalid(dir.path(), &with_backup(keys));

        let last = keys.lines().last().unwrap();
        assert_eq!(message, expected);
        assert_eq!((line, column), (11, last.find('=').unwrap() + 3), "{keys}");
    }
}

#[test]
fn backup_missing_driver_key_is_rejected() {
    let dir = fixture();
    let cases = [
        ("driver = \"sqlite\"", "the `sqlite` driver needs `path`"),
        (
            "driver = \"directory\"",
            "the `directory` driver needs `path`",
        ),
        ("driver = \"postgres\"", "the `postgres` driver needs `url`"),
        ("driver = \"mysql\"", "the `mysql` driver needs `url`"),
    ];
    for (keys, expected) in cases {
        let (line, column, message, _) = invalid(dir.path(), &with_backup(keys));

        assert_eq!(message, expected);
        assert_eq!((line, column), (9, 10), "{keys}");
    }

    let (_, _, message, _) = invalid(dir.path(), &with_backup("path = \"a.db\""));
    assert!(message.contains("missing field `driver`"), "{message}");
}

#[test]
fn backup_path_of_wrong_kind_is_rejected() {
    let dir = fixture();
    std::fs::write(dir.path().join("file.txt"), "x").unwrap();
    let cases = [
        (
            "driver = \"sqlite\"\npath = \"plain\"",
            "plain",
            "is a folder",
        ),
        (
            "driver = \"directory\"\npath = \"file.txt\"",
            "file.txt",
            "is not a folder",
        ),
    ];
    for (keys, name, expected) in cases {
        let (line, column, message, _) = invalid(dir.path(), &with_backup(keys));

        assert_eq!(
            message,
            format!(
                "backup path `{}` {expected}",
                dir.path().join(name).display()
            )
        );
        assert_eq!((line, column), (10, 8), "{keys}");
    }

    let (_, _, message, _) = invalid(
        dir.path(),
        &with_backup("driver = \"sqlite\"\npath = \" \""),
    );
    assert_eq!(message, "empty backup `path`");
}

#[test]
fn backup_bad_urls_are_rejected() {
    let dir = fixture();
    let cases = [
        (
            "postgres",
            "http://127.0.0.1/orders",
            "database URL scheme `http` does not match the `postgres` driver",
        ),
        (
            "mysql",
            "postgres://127.0.0.1/orders",
            "database URL scheme `postgres` does not match the `mysql` driver",
        ),
        (
            "postgres",
            "postgres://127.0.0.1/",
            "database URL `postgres://127.0.0.1/` does not name one database",
        ),
        (
            "mysql",
            "mysql://127.0.0.1/a/b",
            "database URL `mysql://127.0.0.1/a/b` does not name one database",
        ),
        (
            "mysql",
            "mysql://127.0.0.1/shop?ssl=1",
            "database URL `mysql://127.0.0.1/shop?ssl=1` has query parameters",
        ),
        (
            "mysql",
            "mysql:///shop",
            "database URL `mysql:///shop` names no host",
        ),
    ];
    for (driver, url, expected) in cases {
        let text = with_backup(&format!("driver = \"{driver}\"\nurl = \"{url}\""));
        let (line, column, message, _) = invalid(dir.path(), &text);

        assert_eq!(message, expected);
        assert_eq!((line, column), (10, 7), "{url}");
    }
}

#[test]
fn backup_invalid_password_env_is_rejected() {
    let dir = fixture();
    let text =
        with_backup("driver = \"postgres\"\nurl = \"postgres://h/db\"\npassword_env = \"1-PASS\"");
    let (line, column, message, _) = invalid(dir.path(), &text);

    assert_eq!((line, column), (11, 16));
    assert_eq!(message, "invalid environment variable name `1-PASS`");
}

#[test]
fn backup_keep_and_max_age_are_checked() {
    let dir = fixture();
    let cases = [
        (
            "keep = 0",
            "invalid `keep` `0`: must be a whole number of at least 1",
        ),
        (
            "keep = -3",
            "invalid `keep` `-3`: must be a whole number of at least 1",
        ),
        ("max_age = \"0s\"", "`max_age` must be greater than zero"),
        (
            "max_age = \"soon\"",
            "invalid duration `soon` for `max_age`",
        ),
        (
            "timeout = 5",
            "invalid duration `5` for `timeout`: expected a string",
        ),
    ];
    for (setting, expected) in cases {
        let text = with_backup(&format!("driver = \"sqlite\"\npath = \"a.db\"\n{setting}"));
        let (line, column, message, _) = invalid(dir.path(), &text);

        assert!(message.starts_with(expected), "{setting}: {message}");
        assert_eq!(line, 11, "{setting}");
        assert_eq!(column, setting.find('=').unwrap() + 3, "{setting}");
    }
}

#[test]
fn unknown_branch_is_rejected() {
    let dir = fixture();
    let text = service("orders", "branch = \"mian\"");
    let (line, column, message, _) = invalid(dir.path(), &text);

    assert_eq!((line, column), (3, 10));
    assert!(
        message.starts_with("branch `mian` not found in"),
        "{message}"
    );
}

#[test]
fn empty_expected_status_is_rejected() {
    let dir = fixture();
    let text = service("orders", "").replace("url = ", "expected_status = []\nurl = ");
    let (line, _, message, hint) = invalid(dir.path(), &text);

    assert_eq!(line, 5);
    assert_eq!(message, "empty `expected_status`");
    assert!(hint.contains("remove the key"), "{hint}");
}

#[test]
fn file_without_services_is_rejected() {
    let dir = fixture();
    let (line, _, message, _) = invalid(dir.path(), "state_dir = \"state\"\n");

    assert_eq!(line, 1);
    assert_eq!(message, "no services declared");
}

#[test]
fn negative_duration_names_the_sign() {
    let dir = fixture();
    let text = service("orders", "").replace("url = ", "interval = \"-1s\"\nurl = ");
    let (_, _, message, _) = invalid(dir.path(), &text);

    assert_eq!(
        message,
        "invalid duration `-1s` for `interval`: durations cannot be negative"
    );
}
