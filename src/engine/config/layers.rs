//! Finding, reading and merging the configuration layers, remembering which
//! layer set each key so errors can name it.

use super::{Config, ConfigError, DEFAULTS};
use std::fmt;
use std::path::{Path, PathBuf};

/// Where a layer came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    Defaults,
    File(PathBuf),
    Env(String),
    Set(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Defaults => f.write_str("built-in defaults"),
            Origin::File(p) => write!(f, "{}", p.display()),
            Origin::Env(v) => write!(f, "environment variable {v}"),
            Origin::Set(s) => write!(f, "--set {s}"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Layer {
    pub origin: Origin,
    pub table: toml::Table,
}

/// What to read besides the built-in defaults.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// `/etc/rollcall/rollcall.toml` and the user config dir, when present.
    pub system_files: Vec<PathBuf>,
    /// `<data-dir>/rollcall.toml`, read after the system and user files when
    /// present (the demo writes its authorities there).
    pub data_files: Vec<PathBuf>,
    /// `--config FILE`, in order; each must exist.
    pub files: Vec<PathBuf>,
    /// `ROLLCALL_*` variables (name, value).
    pub env: Vec<(String, String)>,
    /// `--set KEY=VALUE`.
    pub sets: Vec<String>,
}

impl LoadOptions {
    /// The standard system and user config files, and the process environment.
    pub fn standard(files: Vec<PathBuf>, sets: Vec<String>) -> Self {
        let mut system_files = vec![PathBuf::from("/etc/rollcall/rollcall.toml")];
        if let Some(dirs) = directories::ProjectDirs::from("", "", "rollcall") {
            system_files.push(dirs.config_dir().join("rollcall.toml"));
        }
        let env = std::env::vars().filter(|(k, _)| k.starts_with("ROLLCALL_")).collect();
        LoadOptions {
            system_files,
            data_files: Vec::new(),
            files,
            env,
            sets,
        }
    }
}

/// The layers that produced a config, for `info` and error messages.
#[derive(Clone, Debug)]
pub struct ConfigSources {
    pub layers: Vec<Layer>,
    /// Every system/user file looked at and whether it existed.
    pub considered: Vec<(PathBuf, bool)>,
    pub merged: toml::Table,
}

impl ConfigSources {
    /// The last layer that sets `key` (dotted path).
    /// A key no layer sets (a missing setting) is blamed on the layer
    /// that set its nearest table, e.g. the file that declared the
    /// authority.
    pub fn origin_of(&self, key: &str) -> String {
        let mut key = key;
        loop {
            if let Some(l) = self.layers.iter().rev().find(|l| lookup(&l.table, key).is_some()) {
                return l.origin.to_string();
            }
            match key.rsplit_once('.') {
                Some((parent, _)) => key = parent,
                None => return Origin::Defaults.to_string(),
            }
        }
    }
}

fn lookup<'a>(table: &'a toml::Table, key: &str) -> Option<&'a toml::Value> {
    let mut parts = key.split('.');
    let mut value = table.get(parts.next()?)?;
    for part in parts {
        value = value.as_table()?.get(part)?;
    }
    Some(value)
}

/// Deep merge: tables merge key by key, anything else replaces.
fn merge(into: &mut toml::Table, from: &toml::Table) {
    for (k, v) in from {
        match (into.get_mut(k), v) {
            (Some(toml::Value::Table(a)), toml::Value::Table(b)) => merge(a, b),
            _ => {
                into.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Sets a dotted key, creating tables on the way.
fn set_path(table: &mut toml::Table, key: &str, value: toml::Value) -> Result<(), String> {
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(format!(
            "'{key}' is not a config key (expected e.g. import.max_row_errors)"
        ));
    }
    let (last, path) = parts.split_last().ok_or_else(|| "empty key".to_string())?;
    let mut cur = table;
    for p in path {
        let entry = cur
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = entry
            .as_table_mut()
            .ok_or_else(|| format!("'{p}' in '{key}' is a value, not a table"))?;
    }
    cur.insert(last.to_string(), value);
    Ok(())
}

/// A value from the command line or environment: TOML when it parses as a
/// TOML value (`-1`, `true`, `"x"`, `[1, 2]`), else a plain string.
fn parse_value(raw: &str) -> toml::Value {
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

fn read_file(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
        path: path.display().to_string(),
        message: format!("cannot read it: {e}"),
    })?;
    text.parse::<toml::Table>().map_err(|e| ConfigError::File {
        path: path.display().to_string(),
        message: e.to_string().trim_end().replace('\n', "\n  "),
    })
}

/// Reads every layer, merges them and checks the result.
/// The `data_dir` the layers name, read from the merged tables without
/// deserializing them (so a layer that only completes with the data dir's
/// own file, e.g. an override of an authority defined there, does not fail
/// before that file is read).
pub fn data_dir(opts: &LoadOptions) -> Result<Option<PathBuf>, ConfigError> {
    let sources = gather(opts)?;
    Ok(sources
        .merged
        .get("data_dir")
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .map(PathBuf::from))
}

/// Merges the layers, then deserializes the whole: an override of any key
/// (an authority's `max_attempts`, say) applies to what earlier layers
/// defined.
pub fn load(opts: &LoadOptions) -> Result<(Config, ConfigSources), ConfigError> {
    let sources = gather(opts)?;
    let config = deserialize(&sources)?;
    Ok((config, sources))
}

/// Reads and merges every layer.
fn gather(opts: &LoadOptions) -> Result<ConfigSources, ConfigError> {
    let defaults = DEFAULTS.parse::<toml::Table>().map_err(|e| ConfigError::File {
        path: "built-in defaults".into(),
        message: e.to_string(),
    })?;
    let mut layers = vec![Layer {
        origin: Origin::Defaults,
        table: defaults,
    }];
    let mut considered = Vec::new();
    for path in &opts.system_files {
        let exists = path.is_file();
        considered.push((path.clone(), exists));
        if exists {
            layers.push(Layer {
                origin: Origin::File(path.clone()),
                table: read_file(path)?,
            });
        }
    }
    for path in opts.data_files.iter().filter(|p| p.is_file()) {
        considered.push((path.clone(), true));
        layers.push(Layer {
            origin: Origin::File(path.clone()),
            table: read_file(path)?,
        });
    }
    for path in &opts.files {
        layers.push(Layer {
            origin: Origin::File(path.clone()),
            table: read_file(path)?,
        });
    }
    let mut env: Vec<_> = opts.env.clone();
    env.sort();
    for (name, value) in env {
        let Some(rest) = name.strip_prefix("ROLLCALL_") else {
            continue;
        };
        let key = rest.to_ascii_lowercase().replace("__", ".");
        let mut table = toml::Table::new();
        set_path(&mut table, &key, parse_value(&value)).map_err(|message| ConfigError::Override {
            origin: Origin::Env(name.clone()).to_string(),
            message,
        })?;
        layers.push(Layer {
            origin: Origin::Env(name),
            table,
        });
    }
    for set in &opts.sets {
        let origin = Origin::Set(set.clone());
        let (key, value) = set.split_once('=').ok_or_else(|| ConfigError::Override {
            origin: origin.to_string(),
            message: "expected KEY=VALUE, e.g. --set import.max_row_errors=-1".into(),
        })?;
        let mut table = toml::Table::new();
        set_path(&mut table, key.trim(), parse_value(value.trim())).map_err(|message| ConfigError::Override {
            origin: origin.to_string(),
            message,
        })?;
        layers.push(Layer { origin, table });
    }
    let mut merged = toml::Table::new();
    for layer in &layers {
        merge(&mut merged, &layer.table);
    }
    Ok(ConfigSources {
        layers,
        considered,
        merged,
    })
}

fn deserialize(sources: &ConfigSources) -> Result<Config, ConfigError> {
    let config: Config = serde_path_to_error::deserialize(toml::Value::Table(sources.merged.clone())).map_err(|e| {
        let key = e.path().to_string();
        let inner = e.into_inner().to_string();
        // toml repeats the key on a line of its own: the message names it.
        let inner = inner
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("in `"))
            .collect::<Vec<_>>()
            .join(" ");
        let message = if inner.contains("unknown field") {
            format!("{inner}; check the spelling (configs/rollcall.toml documents every key)")
        } else if inner.contains("invalid type") || inner.contains("unknown variant") {
            format!("{inner}; change the value (configs/rollcall.toml documents every key)")
        } else {
            inner
        };
        ConfigError::Key {
            origin: sources.origin_of(&key),
            key,
            message,
        }
    })?;
    config.validate(sources)?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> LoadOptions {
        LoadOptions::default()
    }

    #[test]
    fn defaults_load() {
        let (c, _) = load(&opts()).unwrap();
        assert_eq!(c.import.limbo_school, "limbo");
        assert_eq!(c.import.deletion_grace_days, 90);
        assert_eq!(c.import.max_row_errors, 0);
    }

    #[test]
    fn later_layers_win() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.toml");
        std::fs::write(&f, "[import]\nmax_row_errors = 3\nlimbo_school = \"parked\"\n").unwrap();
        let o = LoadOptions {
            files: vec![f],
            env: vec![("ROLLCALL_IMPORT__MAX_ROW_ERRORS".into(), "7".into())],
            sets: vec!["import.max_row_errors=-1".into()],
            ..opts()
        };
        let (c, s) = load(&o).unwrap();
        assert_eq!(c.import.max_row_errors, -1);
        assert_eq!(c.import.limbo_school, "parked");
        assert_eq!(s.origin_of("import.max_row_errors"), "--set import.max_row_errors=-1");
    }

    #[test]
    fn errors_name_key_and_origin() {
        let o = LoadOptions {
            sets: vec!["import.max_row_errors=lots".into()],
            ..opts()
        };
        let e = load(&o).unwrap_err().to_string();
        assert!(e.contains("import.max_row_errors") && e.contains("--set"), "{e}");
        let o = LoadOptions {
            sets: vec!["import.max_row_erors=1".into()],
            ..opts()
        };
        let e = load(&o).unwrap_err().to_string();
        assert!(e.contains("max_row_erors"), "{e}");
    }

    #[test]
    fn bad_file_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("bad.toml");
        std::fs::write(&f, "[import]\nmax_row_errors = \n").unwrap();
        let e = load(&LoadOptions {
            files: vec![f.clone()],
            ..opts()
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("bad.toml") && e.contains("line 2"), "{e}");
    }

    #[test]
    fn shipped_overlays_load() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
        for name in ["sisopi.toml", "mapping-de.toml", "ldap.toml", "ldap-ucsschool.toml"] {
            load(&LoadOptions {
                files: vec![root.join(name)],
                ..opts()
            })
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
