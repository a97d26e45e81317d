//! `rollcall tui` (and `rollcall` alone on a terminal, and `rollcall demo`):
//! open the engine, pick the theme, run the console on a tokio runtime.

use crate::cli::Exit;
use crate::cli::args::ConsoleArgs;
use crate::engine::api::EngineApi;
use crate::engine::{Engine, Settings};
use crate::tui::keymap::Keymap;
use crate::tui::theme::Theme;
use crate::tui::views::ViewId;
use crate::tui::{ConsoleOptions, run as run_console};
use anyhow::Context;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

/// `--theme`, else `NO_COLOR` (mono), else `console.theme`; a `NAME.toml`
/// in the theme dir wins over a built-in of that name.
pub fn resolve_theme(settings: &Settings, args: &ConsoleArgs) -> anyhow::Result<Theme> {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let name = match (&args.theme, no_color) {
        (Some(t), _) => t.clone(),
        (None, true) => "mono".to_string(),
        (None, false) => settings.config.console.theme.clone(),
    };
    let dir = if settings.config.console.theme_dir.is_empty() {
        directories::ProjectDirs::from("", "", "rollcall").map(|d| d.config_dir().join("themes"))
    } else {
        Some(PathBuf::from(&settings.config.console.theme_dir))
    };
    let user = dir
        .map(|d| d.join(format!("{name}.toml")))
        .filter(|p| p.is_file())
        .map(|p| std::fs::read_to_string(&p).with_context(|| format!("reading theme {}", p.display())))
        .transpose()?;
    let theme = Theme::load(&name, user.as_deref())?;
    Ok(if no_color && args.theme.is_none() {
        theme.into_monochrome()
    } else {
        theme
    })
}

/// The keys in force: the action table's, with `keys.toml` from the user
/// config dir applied; a conflict or a bad key refuses to start, naming
/// them.
pub fn resolve_keys() -> anyhow::Result<Keymap> {
    let Some(path) = directories::ProjectDirs::from("", "", "rollcall").map(|d| d.config_dir().join("keys.toml"))
    else {
        return Ok(Keymap::default());
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => Keymap::with_overrides(&text, &path.display().to_string())
            .map_err(|e| anyhow::anyhow!(crate::engine::EngineError::BadInput(e))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Keymap::default()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Runs the console on an open engine until the admin quits.
pub fn console(engine: Engine, args: &ConsoleArgs, start: ViewId) -> anyhow::Result<Exit> {
    let theme = resolve_theme(engine.settings(), args)?;
    let keymap = resolve_keys()?;
    if !std::io::stdout().is_terminal() {
        anyhow::bail!("the console needs a terminal on stdout; use the subcommands (rollcall --help) in scripts");
    }
    let cfg = &engine.config().console;
    let opts = ConsoleOptions {
        theme,
        mouse: args.mouse || cfg.mouse,
        max_fps: cfg.max_fps,
        start,
        keymap,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("rollcall-console")
        .build()
        .context("starting the console runtime")?;
    let (api, events) = EngineApi::new(engine);
    let result = rt.block_on(run_console(api, events, opts));
    // Cancelled jobs stop at their next check; don't hang on one that won't.
    rt.shutdown_timeout(Duration::from_secs(10));
    result.context("console")?;
    Ok(Exit::Ok)
}

pub fn run(settings: Settings, args: &ConsoleArgs) -> anyhow::Result<Exit> {
    console(Engine::open(settings)?, args, ViewId::Dashboard)
}
