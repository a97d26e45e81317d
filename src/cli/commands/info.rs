//! `rollcall info`: the config files and paths in use and the merged
//! config, secrets masked.

use crate::cli::Exit;
use crate::cli::output;
use crate::cli::output::outln;
use crate::engine::Settings;
use crate::engine::config::Origin;
use serde::Serialize;

#[derive(Serialize)]
struct Layer {
    origin: String,
    path: Option<String>,
    used: bool,
}

#[derive(Serialize)]
struct Info {
    version: &'static str,
    layers: Vec<Layer>,
    data_dir: String,
    paths: serde_json::Value,
    read_only: bool,
    /// The directory change listener (LDAP only).
    listener: Option<crate::store::ldap::ListenerStatus>,
    config: toml::Table,
}

pub use crate::engine::config::secrets::mask;

pub fn run(settings: &Settings, json: bool) -> anyhow::Result<Exit> {
    let mut layers = Vec::new();
    for (path, exists) in &settings.sources.considered {
        if !exists {
            layers.push(Layer {
                origin: "system/user file".into(),
                path: Some(path.display().to_string()),
                used: false,
            });
        }
    }
    for l in &settings.sources.layers {
        let (origin, path) = match &l.origin {
            Origin::Defaults => ("built-in defaults".to_string(), None),
            Origin::File(p) => ("file".to_string(), Some(p.display().to_string())),
            Origin::Env(v) => (format!("environment {v}"), None),
            Origin::Set(s) => (format!("--set {s}"), None),
        };
        layers.push(Layer {
            origin,
            path,
            used: true,
        });
    }
    let p = &settings.paths;
    let paths = serde_json::json!({
        "directory": p.directory_db().display().to_string(),
        "state": p.state_db().display().to_string(),
        "queues": p.queues().display().to_string(),
        "runs": p.runs().display().to_string(),
        "logs": p.logs().display().to_string(),
        "audit_log": p.audit_log().display().to_string(),
        "feeds": p.feeds().display().to_string(),
    });
    let mut paths = paths;
    if settings.config.directory.backend == crate::engine::config::Backend::Ldap {
        paths["directory"] = serde_json::Value::String(settings.config.directory.ldap.url.clone());
        paths["ldap_journal"] = serde_json::Value::String(p.ldap_journal().display().to_string());
    }
    let mut config = settings.sources.merged.clone();
    mask(&mut config);
    let info = Info {
        version: env!("CARGO_PKG_VERSION"),
        layers,
        data_dir: p.root().display().to_string(),
        paths,
        read_only: settings.read_only,
        listener: crate::engine::listen::listener_status(settings)?,
        config,
    };
    if json {
        output::json(&info)?;
        return Ok(Exit::Ok);
    }
    outln!("rollcall {}", info.version)?;
    outln!("\nconfig layers (later wins):")?;
    for l in &info.layers {
        let state = if l.used { "" } else { "  (not present)" };
        match &l.path {
            Some(path) => outln!("  {path}{state}")?,
            None => outln!("  {}", l.origin)?,
        }
    }
    outln!("\ndata dir: {}", info.data_dir)?;
    if let Some(obj) = info.paths.as_object() {
        for (k, v) in obj {
            outln!("  {k:<10} {}", v.as_str().unwrap_or(""))?;
        }
    }
    outln!("read-only: {}", info.read_only)?;
    if settings.config.directory.backend == crate::engine::config::Backend::Ldap {
        outln!("{}", super::listen::describe(info.listener.as_ref()))?;
    }
    outln!("\nmerged config:\n{}", toml::to_string_pretty(&info.config)?)?;
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_secrets_but_not_secret_files() {
        let mut t: toml::Table = "[a]\ntoken = \"abc\"\ntoken_file = \"/x\"\nbind_password = \"p\"\n"
            .parse()
            .unwrap();
        mask(&mut t);
        let s = toml::to_string(&t).unwrap();
        assert!(!s.contains("abc") && !s.contains("\"p\"") && s.contains("/x"), "{s}");
    }
}
