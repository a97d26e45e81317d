//! Rendering templates for one person and cleaning the result: slicing,
//! transliteration (umlauts, other marks), allowed characters, cutting.

use super::SchemeFields;
use super::template::Part;
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Concatenates literals and (sliced) field values; None when a field has no value.
/// Field values are trimmed and NFC-composed before slicing, so slices count the
/// characters a reader sees.
pub(super) fn render_parts(parts: &[Part], fields: &SchemeFields<'_>) -> Option<String> {
    let mut out = String::new();
    for part in parts {
        match part {
            Part::Literal { text, .. } => out.push_str(text),
            Part::Field { field, slice, .. } => {
                let value: String = field.value(fields)?.trim().nfc().collect();
                match slice {
                    Some(slice) => out.push_str(&slice.apply(&value)),
                    None => out.push_str(&value),
                }
            }
        }
    }
    Some(out)
}

/// German umlauts expanded (when `umlauts`), a few letters NFKD leaves alone mapped,
/// then every other diacritic stripped.
pub(super) fn transliterate(text: &str, umlauts: bool) -> String {
    if text.is_ascii() {
        // Nothing to compose, map or strip (most names).
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    for c in text.nfc() {
        match c {
            'ä' | 'Ä' if umlauts => out.push_str("ae"),
            'ö' | 'Ö' if umlauts => out.push_str("oe"),
            'ü' | 'Ü' if umlauts => out.push_str("ue"),
            'ß' | 'ẞ' => out.push_str("ss"),
            'æ' | 'Æ' => out.push_str("ae"),
            'œ' | 'Œ' => out.push_str("oe"),
            'ø' | 'Ø' => out.push('o'),
            'ł' | 'Ł' => out.push('l'),
            'đ' | 'Đ' | 'ð' | 'Ð' => out.push('d'),
            'þ' | 'Þ' => out.push_str("th"),
            'ħ' | 'Ħ' => out.push('h'),
            'ı' => out.push('i'),
            other => out.push(other),
        }
    }
    out.nfkd().filter(|&c| !is_combining_mark(c)).collect()
}

/// Lowercased, transliterated, only `[a-z0-9.-]` (plus `_` when `underscore`) kept,
/// runs of `.` collapsed, leading and trailing `.`/`-` trimmed.
pub(super) fn clean(raw: &str, umlauts: bool, underscore: bool) -> String {
    let lowered = transliterate(raw, umlauts).to_lowercase();
    let mut out = String::with_capacity(lowered.len());
    for c in lowered.chars() {
        let keep = c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-' || (underscore && c == '_');
        if keep && !(c == '.' && out.ends_with('.')) {
            out.push(c);
        }
    }
    out.trim_matches(['.', '-']).to_string()
}

/// The first `max` characters, trailing `.`/`-` trimmed.
pub(super) fn cut(text: &str, max: usize) -> String {
    let head: String = text.chars().take(max).collect();
    head.trim_end_matches(['.', '-']).to_string()
}

pub(super) fn validate_domain(domain: &str) -> Result<(), &'static str> {
    if domain.is_empty() {
        return Err("the domain after '@' is empty");
    }
    if !domain.is_ascii() {
        return Err("must be plain ASCII (write international domains in their xn-- form)");
    }
    if domain.len() > 253 {
        return Err("longer than 253 characters");
    }
    for label in domain.split('.') {
        if label.is_empty() {
            return Err("has an empty label (leading, trailing or double '.')");
        }
        if label.len() > 63 {
            return Err("has a label longer than 63 characters");
        }
        if !label
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err("may only contain letters, digits, '-' and '.'");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("has a label starting or ending with '-'");
        }
    }
    Ok(())
}
