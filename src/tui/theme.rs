//! Colour themes: TOML files of named styles. A theme overrides only the
//! styles it sets; the rest come from the built-in `default` (dark). Colours
//! are the 16 named ANSI colours or 256-colour indexes — no truecolor — so
//! themes work over SSH on any 256-colour terminal. `mono` (chosen when
//! `NO_COLOR` is set) drops every colour and shows selection by reverse video
//! and bold.

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;
use std::collections::BTreeMap;
use thiserror::Error;

/// The shipped themes, compiled in.
pub const BUILTIN: &[(&str, &str)] = &[
    ("default", include_str!("../../themes/default.toml")),
    ("light", include_str!("../../themes/light.toml")),
    ("high-contrast", include_str!("../../themes/high-contrast.toml")),
    ("mono", include_str!("../../themes/mono.toml")),
];

#[derive(Debug, Error)]
pub enum ThemeError {
    #[error("theme {name}: {message}")]
    Bad { name: String, message: String },
    #[error("no theme '{0}' (built in: default, light, high-contrast, mono; or NAME.toml in the theme dir)")]
    Unknown(String),
}

/// Every style a theme names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Slot {
    Base,
    Dim,
    Title,
    Border,
    Header,
    Selected,
    Tab,
    TabActive,
    Bar,
    HintKey,
    Hint,
    Ok,
    Warn,
    Error,
    Danger,
    Accent,
    Gauge,
    Active,
    Limbo,
    Popup,
    Input,
    JsonKey,
    JsonString,
    JsonNumber,
    JsonLiteral,
    DiffOld,
    DiffNew,
}

impl Slot {
    pub const ALL: [Slot; 27] = [
        Slot::Base,
        Slot::Dim,
        Slot::Title,
        Slot::Border,
        Slot::Header,
        Slot::Selected,
        Slot::Tab,
        Slot::TabActive,
        Slot::Bar,
        Slot::HintKey,
        Slot::Hint,
        Slot::Ok,
        Slot::Warn,
        Slot::Error,
        Slot::Danger,
        Slot::Accent,
        Slot::Gauge,
        Slot::Active,
        Slot::Limbo,
        Slot::Popup,
        Slot::Input,
        Slot::JsonKey,
        Slot::JsonString,
        Slot::JsonNumber,
        Slot::JsonLiteral,
        Slot::DiffOld,
        Slot::DiffNew,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Slot::Base => "base",
            Slot::Dim => "dim",
            Slot::Title => "title",
            Slot::Border => "border",
            Slot::Header => "header",
            Slot::Selected => "selected",
            Slot::Tab => "tab",
            Slot::TabActive => "tab_active",
            Slot::Bar => "bar",
            Slot::HintKey => "hint_key",
            Slot::Hint => "hint",
            Slot::Ok => "ok",
            Slot::Warn => "warn",
            Slot::Error => "error",
            Slot::Danger => "danger",
            Slot::Accent => "accent",
            Slot::Gauge => "gauge",
            Slot::Active => "active",
            Slot::Limbo => "limbo",
            Slot::Popup => "popup",
            Slot::Input => "input",
            Slot::JsonKey => "json_key",
            Slot::JsonString => "json_string",
            Slot::JsonNumber => "json_number",
            Slot::JsonLiteral => "json_literal",
            Slot::DiffOld => "diff_old",
            Slot::DiffNew => "diff_new",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemeFile {
    #[serde(default)]
    #[allow(dead_code)] // documentation inside the file
    description: String,
    #[serde(default)]
    styles: BTreeMap<String, StyleSpec>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StyleSpec {
    fg: Option<ColorSpec>,
    bg: Option<ColorSpec>,
    #[serde(default)]
    bold: bool,
    #[serde(default)]
    italic: bool,
    #[serde(default)]
    underline: bool,
    #[serde(default)]
    reverse: bool,
    #[serde(default)]
    dim: bool,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ColorSpec {
    Index(u8),
    Name(String),
}

fn color(spec: &ColorSpec) -> Result<Color, String> {
    Ok(match spec {
        ColorSpec::Index(i) => Color::Indexed(*i),
        ColorSpec::Name(n) => match n.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
            "reset" | "default" => Color::Reset,
            "black" => Color::Black,
            "red" => Color::Red,
            "green" => Color::Green,
            "yellow" => Color::Yellow,
            "blue" => Color::Blue,
            "magenta" => Color::Magenta,
            "cyan" => Color::Cyan,
            "gray" | "grey" => Color::Gray,
            "darkgray" | "darkgrey" => Color::DarkGray,
            "lightred" => Color::LightRed,
            "lightgreen" => Color::LightGreen,
            "lightyellow" => Color::LightYellow,
            "lightblue" => Color::LightBlue,
            "lightmagenta" => Color::LightMagenta,
            "lightcyan" => Color::LightCyan,
            "white" => Color::White,
            other => {
                return Err(format!(
                    "'{other}' is not a colour: use an ANSI name (red, lightblue, …) or a 256-colour index 0-255"
                ));
            }
        },
    })
}

impl StyleSpec {
    fn style(&self) -> Result<Style, String> {
        let mut s = Style::default();
        if let Some(fg) = &self.fg {
            s = s.fg(color(fg)?);
        }
        if let Some(bg) = &self.bg {
            s = s.bg(color(bg)?);
        }
        for (on, m) in [
            (self.bold, Modifier::BOLD),
            (self.italic, Modifier::ITALIC),
            (self.underline, Modifier::UNDERLINED),
            (self.reverse, Modifier::REVERSED),
            (self.dim, Modifier::DIM),
        ] {
            if on {
                s = s.add_modifier(m);
            }
        }
        Ok(s)
    }
}

/// A resolved theme: one style per slot.
#[derive(Clone, Debug, PartialEq)]
pub struct Theme {
    pub name: String,
    styles: BTreeMap<Slot, Style>,
    /// No colours at all (mono / NO_COLOR).
    pub monochrome: bool,
}

impl Theme {
    pub fn get(&self, slot: Slot) -> Style {
        self.styles.get(&slot).copied().unwrap_or_default()
    }

    /// Applies a theme file's styles on top of this theme.
    fn overlay(&mut self, name: &str, text: &str) -> Result<(), ThemeError> {
        let bad = |message: String| ThemeError::Bad {
            name: name.to_string(),
            message,
        };
        let file: ThemeFile = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        for (key, spec) in &file.styles {
            let slot = Slot::ALL
                .into_iter()
                .find(|s| s.key() == key)
                .ok_or_else(|| bad(format!("unknown style '{key}'")))?;
            self.styles
                .insert(slot, spec.style().map_err(|m| bad(format!("{key}: {m}")))?);
        }
        self.name = name.to_string();
        Ok(())
    }

    /// The built-in dark theme.
    pub fn default_theme() -> Self {
        let mut t = Theme {
            name: "default".into(),
            styles: BTreeMap::new(),
            monochrome: false,
        };
        // The shipped default is tested to parse; an error here would leave
        // plain styles, never a panic.
        let _ = t.overlay("default", BUILTIN[0].1);
        t
    }

    /// Resolves a theme by name: `user` is the text of `NAME.toml` from the
    /// user theme dir when one exists (it wins over a built-in of that name).
    pub fn load(name: &str, user: Option<&str>) -> Result<Self, ThemeError> {
        let mut t = Theme::default_theme();
        let text = match user {
            Some(text) => text,
            None => {
                BUILTIN
                    .iter()
                    .find(|(n, _)| *n == name)
                    .ok_or_else(|| ThemeError::Unknown(name.to_string()))?
                    .1
            }
        };
        t.overlay(name, text)?;
        if name == "mono" {
            t = t.into_monochrome();
        }
        Ok(t)
    }

    /// Drops every colour; keeps modifiers, so selection stays visible.
    pub fn into_monochrome(mut self) -> Self {
        for style in self.styles.values_mut() {
            style.fg = None;
            style.bg = None;
        }
        let sel = self.styles.entry(Slot::Selected).or_default();
        *sel = sel.add_modifier(Modifier::REVERSED | Modifier::BOLD);
        self.monochrome = true;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_parse_and_override_only_what_they_set() {
        for (name, _) in BUILTIN {
            Theme::load(name, None).unwrap();
        }
        let dark = Theme::default_theme();
        assert!(
            Slot::ALL.iter().all(|s| dark.styles.contains_key(s)),
            "default sets every slot"
        );
        let user = "[styles]\nselected = { fg = 0, bg = 214, bold = true }\n";
        let t = Theme::load("mine", Some(user)).unwrap();
        assert_eq!(t.get(Slot::Selected).bg, Some(Color::Indexed(214)));
        assert_eq!(t.get(Slot::Header), dark.get(Slot::Header));
    }

    #[test]
    fn mono_has_no_colour_but_a_visible_selection() {
        let t = Theme::load("mono", None).unwrap();
        for s in Slot::ALL {
            assert_eq!((t.get(s).fg, t.get(s).bg), (None, None), "{s:?}");
        }
        assert!(t.get(Slot::Selected).add_modifier.contains(Modifier::REVERSED));
    }

    #[test]
    fn rejects_truecolor_and_unknown_keys() {
        assert!(Theme::load("x", Some("[styles]\nbase = { fg = \"#ff0000\" }\n")).is_err());
        assert!(Theme::load("x", Some("[styles]\nnope = { fg = 1 }\n")).is_err());
        assert!(matches!(Theme::load("nosuch", None), Err(ThemeError::Unknown(_))));
    }
}
