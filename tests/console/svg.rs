//! Screenshots: a rendered buffer as an SVG (monospace text, the theme's
//! 256-colour palette mapped to RGB), for the README.

use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};

const CW: f32 = 8.4;
const CH: f32 = 17.0;
const FG: &str = "#d0d0d0";
const BG: &str = "#1c1c1c";

fn ansi(i: u8) -> String {
    const BASE: [&str; 16] = [
        "#000000", "#cd3131", "#0dbc79", "#e5e510", "#2472c8", "#bc3fbc", "#11a8cd", "#e5e5e5", "#666666", "#f14c4c",
        "#23d18b", "#f5f543", "#3b8eea", "#d670d6", "#29b8db", "#ffffff",
    ];
    match i {
        0..=15 => BASE[i as usize].to_string(),
        16..=231 => {
            let i = i - 16;
            let level = |v: u8| if v == 0 { 0 } else { 55 + v * 40 };
            format!("#{:02x}{:02x}{:02x}", level(i / 36), level((i / 6) % 6), level(i % 6))
        }
        _ => {
            let v = 8 + (i - 232) * 10;
            format!("#{v:02x}{v:02x}{v:02x}")
        }
    }
}

fn color(c: Color, default: &str) -> String {
    match c {
        Color::Reset => default.to_string(),
        Color::Black => ansi(0),
        Color::Red => ansi(1),
        Color::Green => ansi(2),
        Color::Yellow => ansi(3),
        Color::Blue => ansi(4),
        Color::Magenta => ansi(5),
        Color::Cyan => ansi(6),
        Color::Gray => ansi(7),
        Color::DarkGray => ansi(8),
        Color::LightRed => ansi(9),
        Color::LightGreen => ansi(10),
        Color::LightYellow => ansi(11),
        Color::LightBlue => ansi(12),
        Color::LightMagenta => ansi(13),
        Color::LightCyan => ansi(14),
        Color::White => ansi(15),
        Color::Indexed(i) => ansi(i),
        Color::Rgb(r, g, b) => format!("#{r:02x}{g:02x}{b:02x}"),
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

pub fn render(b: &Buffer) -> String {
    let (w, h) = (b.area.width as usize, b.area.height as usize);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0}\" height=\"{:.0}\" font-family=\"DejaVu Sans Mono, Menlo, Consolas, monospace\" font-size=\"14\">\n<rect width=\"100%\" height=\"100%\" fill=\"{BG}\"/>\n",
        w as f32 * CW,
        h as f32 * CH
    );
    for (y, row) in b.content.chunks(w).enumerate() {
        let mut x = 0;
        while x < w {
            let c = &row[x];
            let (mut fg, mut bg) = (color(c.fg, FG), color(c.bg, BG));
            if c.modifier.contains(Modifier::REVERSED) {
                std::mem::swap(&mut fg, &mut bg);
            }
            let bold = c.modifier.contains(Modifier::BOLD);
            let mut end = x + 1;
            while end < w && row[end].fg == c.fg && row[end].bg == c.bg && row[end].modifier == c.modifier {
                end += 1;
            }
            let text: String = row[x..end].iter().map(|c| c.symbol()).collect();
            if bg != BG {
                out.push_str(&format!(
                    "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{CH}\" fill=\"{bg}\"/>",
                    x as f32 * CW,
                    y as f32 * CH,
                    (end - x) as f32 * CW
                ));
            }
            if !text.trim().is_empty() {
                out.push_str(&format!(
                    "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{fg}\"{} xml:space=\"preserve\" textLength=\"{:.1}\">{}</text>",
                    x as f32 * CW,
                    y as f32 * CH + 13.0,
                    if bold { " font-weight=\"bold\"" } else { "" },
                    (end - x) as f32 * CW,
                    esc(&text)
                ));
            }
            x = end;
        }
        out.push('\n');
    }
    out.push_str("</svg>\n");
    out
}
