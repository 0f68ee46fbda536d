//! The demo's configuration. The top-level `services.toml` is its template,
//! and `Template::render` rewrites the template's paths, ports and
//! executable for one demo folder while keeping the comments.

use std::collections::BTreeMap;
use std::path::Path;

use color_eyre::eyre::{Result, bail, eyre};
use toml::{Table, Value};

/// The configuration template, built into the binary.
pub const TEMPLATE: &str = include_str!("../../services.toml");

/// Prefix of the template's paths, which `render` makes absolute.
const PATH_PREFIX: &str = "demo/";

/// First element of the template's restart commands, which `render`
/// replaces with the running executable.
const EXECUTABLE_NAME: &str = "rewind";

/// Comment lines at the top of a rendered configuration.
const HEADER: &str = "# Written by `rewind demo` from the configuration template built into\n\
                      # rewind. The next `rewind demo` run in this folder replaces this file.\n\n";

/// A parsed template.
#[derive(Debug)]
pub struct Template {
    text: String,
    table: Table,
    /// Port of each service's health URL, by service name.
    ports: BTreeMap<String, u16>,
}

/// Replacement values of one render: the demo folder, the executable and
/// the ports.
#[derive(Debug)]
pub struct Target<'a> {
    /// The demo folder, absolute.
    pub dir: &'a Path,
    /// The `rewind` executable, absolute.
    pub executable: &'a Path,
    /// Port of each service, by service name.
    pub ports: &'a BTreeMap<String, u16>,
}

impl Template {
    /// Parses `text` and reads each service's port from its health URL.
    pub fn parse(text: &str) -> Result<Template> {
        let table: Table = toml::from_str(text)
            .map_err(|error| eyre!("invalid configuration template: {error}"))?;

        let mut ports = BTreeMap::new();
        for (name, service) in services(&table)? {
            let url = service
                .get("health")
                .and_then(|health| health.get("url"))
                .and_then(Value::as_str)
                .ok_or_else(|| eyre!("template service `{name}` has no `health.url`"))?;
            let port = reqwest::Url::parse(url)
                .ok()
                .and_then(|url| url.port())
                .ok_or_else(|| eyre!("template service `{name}` has no port in `{url}`"))?;
            if ports.values().any(|other| *other == port) {
                bail!("template port {port} of service `{name}` is used twice");
            }
            ports.insert(name.clone(), port);
        }

        Ok(Template {
            text: text.to_owned(),
            table,
            ports,
        })
    }

    /// Returns the port of each service in the template, by service name.
    pub fn ports(&self) -> &BTreeMap<String, u16> {
        &self.ports
    }

    /// Returns the template with its values rewritten for `target`.
    ///
    /// Every string token in the text that starts with `demo/`, names a
    /// template port or equals `rewind` is replaced, and comments are copied.
    /// The result is then parsed and compared with the template's table
    /// rewritten value by value, where `rewind` counts only as the first
    /// element of a restart command. A mismatch is an error, so the text
    /// rewrite never changes a key or a value that it should not.
    pub fn render(&self, target: &Target) -> Result<String> {
        let rewrite = Rewrite::new(self, target)?;

        let body = rewrite_string_tokens(&self.text, |value| {
            rewrite
                .value(value)
                .or_else(|| (value == EXECUTABLE_NAME).then(|| rewrite.executable.clone()))
        })?;
        let rendered = format!("{HEADER}{body}");

        let parsed: Table = toml::from_str(&rendered)
            .map_err(|error| eyre!("rendered configuration is invalid TOML: {error}"))?;
        let mut expected = self.table.clone();
        rewrite.table(&mut expected)?;
        if parsed != expected {
            bail!(
                "rewriting the configuration template changed more than its paths, ports and \
                 executable; in services.toml, write those values as double-quoted strings \
                 without escapes, and write `rewind` only as the first element of a restart command"
            );
        }
        Ok(rendered)
    }
}

/// Returns the `[services.NAME]` tables of `table`.
fn services(table: &Table) -> Result<&Table> {
    table
        .get("services")
        .and_then(Value::as_table)
        .ok_or_else(|| eyre!("configuration template has no `[services]` table"))
}

/// The replacements of one render.
struct Rewrite {
    dir: String,
    executable: String,
    /// New port for each template port.
    ports: BTreeMap<u16, u16>,
}

impl Rewrite {
    fn new(template: &Template, target: &Target) -> Result<Rewrite> {
        let dir = utf8(target.dir, "demo folder")?;
        let executable = utf8(target.executable, "executable")?;

        let mut ports = BTreeMap::new();
        for (name, template_port) in &template.ports {
            let port = target
                .ports
                .get(name)
                .ok_or_else(|| eyre!("no port chosen for service `{name}`"))?;
            ports.insert(*template_port, *port);
        }

        Ok(Rewrite {
            dir,
            executable,
            ports,
        })
    }

    /// Returns the replacement of a string value that is a template path, a
    /// template port or a URL with a template port.
    fn value(&self, value: &str) -> Option<String> {
        if let Some(relative) = value.strip_prefix(PATH_PREFIX) {
            let path = Path::new(&self.dir).join(relative);
            return Some(path.to_string_lossy().into_owned());
        }

        if let Ok(port) = value.parse::<u16>() {
            return self.ports.get(&port).map(u16::to_string);
        }

        let mut url = reqwest::Url::parse(value).ok()?;
        let port = self.ports.get(&url.port()?)?;
        url.set_port(Some(*port)).ok()?;
        Some(url.to_string())
    }

    /// Rewrites `table` in place: every string value through `value`, and
    /// the first element of each restart command to the executable.
    fn table(&self, table: &mut Table) -> Result<()> {
        for (_, value) in table.iter_mut() {
            self.rewrite_values(value);
        }

        let services = table
            .get_mut("services")
            .and_then(Value::as_table_mut)
            .ok_or_else(|| eyre!("configuration template has no `[services]` table"))?;
        for (_, service) in services.iter_mut() {
            let program = service
                .get_mut("restart")
                .and_then(|restart| restart.get_mut("command"))
                .and_then(Value::as_array_mut)
                .and_then(|command| command.first_mut());
            if let Some(program) = program
                && program.as_str() == Some(EXECUTABLE_NAME)
            {
                *program = Value::String(self.executable.clone());
            }
        }
        Ok(())
    }

    fn rewrite_values(&self, value: &mut Value) {
        match value {
            Value::String(text) => {
                if let Some(replacement) = self.value(text) {
                    *text = replacement;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|item| self.rewrite_values(item)),
            Value::Table(table) => table
                .iter_mut()
                .for_each(|(_, item)| self.rewrite_values(item)),
            _ => {}
        }
    }
}

fn utf8(path: &Path, description: &str) -> Result<String> {
    path.to_str().map(str::to_owned).ok_or_else(|| {
        eyre!(
            "{description} path `{}` is not valid UTF-8, which TOML requires; choose a path with UTF-8 names",
            path.display()
        )
    })
}

/// Copies `text`, replacing each double-quoted string token whose content
/// `replace` maps to a new value. Comments and literal strings are copied as
/// they are, and so are basic strings with escapes.
fn rewrite_string_tokens(text: &str, replace: impl Fn(&str) -> Option<String>) -> Result<String> {
    let mut output = String::with_capacity(text.len());
    let mut rest = text;

    while let Some(start) = rest.find(['#', '"', '\'']) {
        output.push_str(&rest[..start]);
        rest = &rest[start..];

        if rest.starts_with('#') {
            let end = rest.find('\n').unwrap_or(rest.len());
            output.push_str(&rest[..end]);
            rest = &rest[end..];
            continue;
        }
        if rest.starts_with("\"\"\"") || rest.starts_with("'''") {
            bail!(
                "the configuration template uses a multi-line string, which the rewrite does not support"
            );
        }

        let quote = rest.as_bytes()[0];
        let end = closing_quote(rest, quote)?;
        let content = &rest[1..end];
        let replacement = if quote == b'"' && !content.contains('\\') {
            replace(content)
        } else {
            None
        };
        match replacement {
            Some(value) => output.push_str(&basic_string(&value)),
            None => output.push_str(&rest[..=end]),
        }
        rest = &rest[end + 1..];
    }

    output.push_str(rest);
    Ok(output)
}

/// Returns the byte index of the quote that closes the string at the start
/// of `text`.
fn closing_quote(text: &str, quote: u8) -> Result<usize> {
    let bytes = text.as_bytes();
    let mut index = 1;
    while index < bytes.len() {
        match bytes[index] {
            b'\\' if quote == b'"' => index += 2,
            b'\n' => break,
            byte if byte == quote => return Ok(index),
            _ => index += 1,
        }
    }
    let line = text.lines().next().unwrap_or_default();
    Err(eyre!(
        "unterminated string in the configuration template: `{line}`"
    ))
}

/// Quotes `value` as a TOML basic string.
fn basic_string(value: &str) -> String {
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for character in value.chars() {
        match character {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            character if character.is_control() => {
                quoted.push_str(&format!("\\u{:04X}", u32::from(character)));
            }
            character => quoted.push(character),
        }
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::demo::history::SERVICES;

    fn chosen_ports() -> BTreeMap<String, u16> {
        [
            ("gateway", 40001),
            ("orders", 40002),
            ("payments", 40003),
            ("inventory", 40004),
        ]
        .into_iter()
        .map(|(name, port)| (name.to_owned(), port))
        .collect()
    }

    fn render(dir: &Path) -> String {
        let template = Template::parse(TEMPLATE).unwrap();
        let target = Target {
            dir,
            executable: Path::new("/opt/rewind/bin/rewind"),
            ports: &chosen_ports(),
        };
        template.render(&target).unwrap()
    }

    fn strings(value: &Value, found: &mut Vec<String>) {
        match value {
            Value::String(text) => found.push(text.clone()),
            Value::Array(items) => items.iter().for_each(|item| strings(item, found)),
            Value::Table(table) => table.values().for_each(|item| strings(item, found)),
            _ => {}
        }
    }

    #[test]
    fn template_lists_demo_services() {
        let template = Template::parse(TEMPLATE).unwrap();

        let names: Vec<&str> = template.ports().keys().map(String::as_str).collect();
        let mut expected: Vec<&str> = SERVICES.iter().map(|history| history.name).collect();
        expected.sort();

        assert_eq!(names, expected);
    }

    #[test]
    fn rendered_config_points_at_dir() {
        let dir = PathBuf::from("/tmp/rewind demo");
        let rendered = render(&dir);

        let table: Table = toml::from_str(&rendered).unwrap();
        let orders = &table["services"]["orders"];

        assert!(!rendered.contains("1808"), "{rendered}");
        assert_eq!(table["state_dir"].as_str(), Some("/tmp/rewind demo/state"));
        assert_eq!(
            orders["deploy_dir"].as_str(),
            Some("/tmp/rewind demo/repos/orders")
        );
        assert_eq!(
            orders["backup"]["path"].as_str(),
            Some("/tmp/rewind demo/data/orders.db")
        );
        assert_eq!(
            orders["health"]["url"].as_str(),
            Some("http://127.0.0.1:40002/health")
        );
        assert_eq!(
            orders["restart"]["command"],
            Value::Array(
                [
                    "/opt/rewind/bin/rewind",
                    "demo-restart",
                    "--port",
                    "40002",
                    "--pidfile",
                    "/tmp/rewind demo/run/orders.pid",
                    "--data",
                    "/tmp/rewind demo/data/orders.db",
                ]
                .into_iter()
                .map(|item| Value::String(item.to_owned()))
                .collect()
            )
        );
    }

    #[test]
    fn rendered_config_has_no_template_values() {
        let dir = PathBuf::from("/srv/demo");
        let rendered = render(&dir);
        let table: Table = toml::from_str(&rendered).unwrap();

        let mut found = Vec::new();
        strings(&Value::Table(table), &mut found);

        for value in &found {
            assert!(!value.starts_with(PATH_PREFIX), "{value}");
            assert!(!value.contains("1808"), "{value}");
            assert_ne!(value, EXECUTABLE_NAME);
        }
    }

    #[test]
    fn rendered_config_keeps_comments() {
        let rendered = render(Path::new("/srv/demo"));

        assert!(rendered.starts_with(HEADER));
        assert!(rendered.contains("# Failed checks in a row that mark the service unhealthy."));
    }

    #[test]
    fn render_escapes_quote_in_dir() {
        let rendered = render(Path::new("/srv/say \"demo\""));

        let table: Table = toml::from_str(&rendered).unwrap();

        assert_eq!(table["state_dir"].as_str(), Some("/srv/say \"demo\"/state"));
    }

    #[test]
    fn render_rejects_executable_outside_command() {
        let text = "[services.a]\nname = \"rewind\"\n[services.a.health]\nurl = \"http://127.0.0.1:18081/health\"\n";
        let template = Template::parse(text).unwrap();
        let ports = BTreeMap::from([("a".to_owned(), 40001)]);
        let target = Target {
            dir: Path::new("/srv/demo"),
            executable: Path::new("/bin/rewind"),
            ports: &ports,
        };

        let error = template.render(&target).unwrap_err().to_string();

        assert!(error.contains("changed more than"), "{error}");
    }

    #[test]
    fn tokens_skip_comments_and_literals() {
        let text = "a = \"demo/x\" # \"demo/y\"\nb = 'demo/z'\n";

        let output = rewrite_string_tokens(text, |value| {
            value
                .strip_prefix("demo/")
                .map(|rest| format!("/abs/{rest}"))
        })
        .unwrap();

        assert_eq!(output, "a = \"/abs/x\" # \"demo/y\"\nb = 'demo/z'\n");
    }
}
