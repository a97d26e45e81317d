//! Where a feed sits in the drop folder (`intake.pattern`): a relative path
//! with `{school}`, `{role}` and `{ext}` placeholders, matched against the
//! files found there; and which names are never feeds (temp names).

use std::path::{Component, Path};

/// A placeholder or literal text within one path segment.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    School,
    Role,
    Ext,
}

/// A parsed `intake.pattern`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    segments: Vec<Vec<Part>>,
}

/// What a file name says: the school, and the role and extension when the
/// pattern has them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Matched {
    pub school: String,
    pub role: Option<String>,
    pub ext: Option<String>,
}

impl Pattern {
    pub fn parse(text: &str) -> Result<Pattern, String> {
        if text.is_empty() || text.starts_with('/') {
            return Err("must be a relative path such as \"{school}/{role}.{ext}\"".into());
        }
        let mut segments = Vec::new();
        let (mut schools, mut roles, mut exts) = (0, 0, 0);
        for seg in text.split('/') {
            if seg.is_empty() || seg == "." || seg == ".." {
                return Err(format!("'{text}' has an empty, '.' or '..' folder"));
            }
            let mut parts = Vec::new();
            let mut rest = seg;
            while !rest.is_empty() {
                if let Some(after) = rest.strip_prefix('{') {
                    let end = after
                        .find('}')
                        .ok_or_else(|| format!("'{text}': a '{{' without '}}'"))?;
                    let part = match &after[..end] {
                        "school" => {
                            schools += 1;
                            Part::School
                        }
                        "role" => {
                            roles += 1;
                            Part::Role
                        }
                        "ext" => {
                            exts += 1;
                            Part::Ext
                        }
                        other => {
                            return Err(format!(
                                "'{{{other}}}' is not a placeholder; use {{school}}, {{role}} and {{ext}}"
                            ));
                        }
                    };
                    if parts.last().is_some_and(|p| !matches!(p, Part::Text(_))) {
                        return Err(format!(
                            "'{text}': two placeholders need text between them (e.g. \"{{school}}_{{role}}\")"
                        ));
                    }
                    parts.push(part);
                    rest = &after[end + 1..];
                } else {
                    let end = rest.find('{').unwrap_or(rest.len());
                    if rest[..end].contains('}') {
                        return Err(format!("'{text}': a '}}' without '{{'"));
                    }
                    parts.push(Part::Text(rest[..end].to_string()));
                    rest = &rest[end..];
                }
            }
            segments.push(parts);
        }
        if schools != 1 || roles > 1 || exts > 1 {
            return Err(format!(
                "'{text}' must have {{school}} once, and {{role}} and {{ext}} at most once"
            ));
        }
        if segments.first().is_some_and(|s| s == &[Part::Text("failed".into())]) {
            return Err("the inbox's failed/ folder holds refused files; start the pattern elsewhere".into());
        }
        Ok(Pattern { segments })
    }

    /// How many folders deep a feed sits (1: directly in the inbox).
    pub fn depth(&self) -> usize {
        self.segments.len()
    }

    /// Matches `rel` (relative to the inbox); among the ways the text can
    /// split, the first that `accept` takes.
    pub fn matches(&self, rel: &Path, accept: &dyn Fn(&Matched) -> bool) -> Option<Matched> {
        let names: Vec<&str> = rel
            .components()
            .map(|c| match c {
                Component::Normal(n) => n.to_str(),
                _ => None,
            })
            .collect::<Option<_>>()?;
        if names.len() != self.segments.len() {
            return None;
        }
        let mut found = None;
        let mut m = Matched::default();
        self.match_from(&names, 0, 0, 0, &mut m, accept, &mut found);
        found
    }

    #[allow(clippy::too_many_arguments)]
    fn match_from(
        &self,
        names: &[&str],
        seg: usize,
        part: usize,
        pos: usize,
        m: &mut Matched,
        accept: &dyn Fn(&Matched) -> bool,
        found: &mut Option<Matched>,
    ) {
        if found.is_some() {
            return;
        }
        if seg == self.segments.len() {
            if accept(m) {
                *found = Some(m.clone());
            }
            return;
        }
        let name = names[seg];
        let parts = &self.segments[seg];
        if part == parts.len() {
            if pos == name.len() {
                self.match_from(names, seg + 1, 0, 0, m, accept, found);
            }
            return;
        }
        let rest = &name[pos..];
        match &parts[part] {
            Part::Text(t) => {
                if rest.starts_with(t.as_str()) {
                    self.match_from(names, seg, part + 1, pos + t.len(), m, accept, found);
                }
            }
            p => {
                // A placeholder takes one or more characters; try each end.
                for (end, _) in rest.char_indices().skip(1).chain([(rest.len(), ' ')]) {
                    if rest.is_empty() {
                        break;
                    }
                    let value = rest[..end].to_string();
                    let saved = m.clone();
                    match p {
                        Part::School => m.school = value,
                        Part::Role => m.role = Some(value),
                        Part::Ext => m.ext = Some(value),
                        Part::Text(_) => unreachable!("handled above"),
                    }
                    self.match_from(names, seg, part + 1, pos + end, m, accept, found);
                    *m = saved;
                    if found.is_some() {
                        return;
                    }
                }
            }
        }
    }
}

/// Names that are never feeds: hidden (`.name`, also how many SFTP and
/// rsync clients write), and `*.part` / `*.tmp` (still being written).
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') || name.ends_with(".part") || name.ends_with(".tmp")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn any(_: &Matched) -> bool {
        true
    }

    #[test]
    fn folder_pattern() {
        let p = Pattern::parse("{school}/{role}.{ext}").unwrap();
        assert_eq!(p.depth(), 2);
        let m = p.matches(Path::new("gsmitte/student.csv"), &any).unwrap();
        assert_eq!(m.school, "gsmitte");
        assert_eq!(m.role.as_deref(), Some("student"));
        assert_eq!(m.ext.as_deref(), Some("csv"));
        assert!(p.matches(Path::new("student.csv"), &any).is_none());
        assert!(p.matches(Path::new("a/b/student.csv"), &any).is_none());
    }

    #[test]
    fn flat_pattern_backtracks_to_an_accepted_split() {
        let p = Pattern::parse("{school}_{role}.csv").unwrap();
        let role_ok = |m: &Matched| m.role.as_deref() == Some("school_admin");
        let m = p.matches(Path::new("gs_mitte_school_admin.csv"), &role_ok).unwrap();
        assert_eq!(m.school, "gs_mitte");
        assert!(p.matches(Path::new("gsmitte_student.json"), &any).is_none());
        assert_eq!(
            p.matches(Path::new("gsmitte_student.csv"), &any).unwrap().school,
            "gsmitte"
        );
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in [
            "",
            "/abs/{school}",
            "{role}.csv",
            "{school}{role}.csv",
            "{school}/../{role}",
            "{nope}.csv",
            "{school}_{school}",
            "failed/{school}.csv",
        ] {
            assert!(Pattern::parse(bad).is_err(), "{bad}");
        }
        assert!(Pattern::parse("{school}.csv").is_ok());
    }

    #[test]
    fn temp_names() {
        for t in [".x.csv", "a.csv.part", "a.tmp", ".part"] {
            assert!(is_temp_name(t), "{t}");
        }
        assert!(!is_temp_name("student.csv"));
    }
}
