//! Value filters of mapping rules: `trim`, `lower`, `upper`, `split(DELIM)`,
//! `date(FORMAT)` and `umlauts`, applied in the order a rule lists them.

use chrono::NaiveDate;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Filter {
    Trim,
    Lower,
    Upper,
    /// Split on a delimiter into the `,`-separated list the model reads.
    Split(String),
    /// Parse a date in this chrono format and write it as `YYYY-MM-DD`.
    Date(String),
    /// ä→ae ö→oe ü→ue ß→ss (and upper-case forms).
    Umlauts,
}

impl Filter {
    /// Parses `trim`, `split(;)`, `date(%d.%m.%Y)`, …
    pub fn parse(text: &str) -> Result<Filter, String> {
        let t = text.trim();
        let arg = |name: &str| -> Option<String> {
            t.strip_prefix(name)
                .and_then(|r| r.strip_prefix('('))
                .and_then(|r| r.strip_suffix(')'))
                .map(str::to_string)
        };
        match t {
            "trim" => return Ok(Filter::Trim),
            "lower" => return Ok(Filter::Lower),
            "upper" => return Ok(Filter::Upper),
            "umlauts" => return Ok(Filter::Umlauts),
            _ => {}
        }
        if let Some(d) = arg("split") {
            if d.is_empty() {
                return Err("split() needs a delimiter, e.g. split(;)".into());
            }
            return Ok(Filter::Split(d));
        }
        if let Some(f) = arg("date") {
            if f.is_empty() {
                return Err("date() needs a format, e.g. date(%d.%m.%Y)".into());
            }
            return Ok(Filter::Date(f));
        }
        Err(format!(
            "unknown filter '{t}'; use trim, lower, upper, split(DELIM), date(FORMAT) or umlauts"
        ))
    }

    pub fn apply(&self, value: String) -> Result<String, String> {
        Ok(match self {
            Filter::Trim => value.trim().to_string(),
            Filter::Lower => value.to_lowercase(),
            Filter::Upper => value.to_uppercase(),
            Filter::Split(d) => value
                .split(d.as_str())
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .collect::<Vec<_>>()
                .join(","),
            Filter::Date(f) => {
                let v = value.trim();
                if v.is_empty() {
                    String::new()
                } else {
                    NaiveDate::parse_from_str(v, f)
                        .map_err(|_| format!("'{v}' is not a date in the format {f}"))?
                        .format("%Y-%m-%d")
                        .to_string()
                }
            }
            Filter::Umlauts => {
                let mut out = String::with_capacity(value.len() + 4);
                for c in value.chars() {
                    match c {
                        'ä' => out.push_str("ae"),
                        'ö' => out.push_str("oe"),
                        'ü' => out.push_str("ue"),
                        'Ä' => out.push_str("Ae"),
                        'Ö' => out.push_str("Oe"),
                        'Ü' => out.push_str("Ue"),
                        'ß' => out.push_str("ss"),
                        c => out.push(c),
                    }
                }
                out
            }
        })
    }
}

impl std::fmt::Display for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Filter::Trim => f.write_str("trim"),
            Filter::Lower => f.write_str("lower"),
            Filter::Upper => f.write_str("upper"),
            Filter::Umlauts => f.write_str("umlauts"),
            Filter::Split(d) => write!(f, "split({d})"),
            Filter::Date(d) => write!(f, "date({d})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(f: &str, v: &str) -> Result<String, String> {
        Filter::parse(f)?.apply(v.to_string())
    }

    #[test]
    fn each_filter() {
        assert_eq!(run("trim", "  a b ").unwrap(), "a b");
        assert_eq!(run("lower", "ÄBC").unwrap(), "äbc");
        assert_eq!(run("upper", "äbc").unwrap(), "ÄBC");
        assert_eq!(run("split(;)", "5a; 5b;;6c").unwrap(), "5a,5b,6c");
        assert_eq!(run("split( / )", "a / b").unwrap(), "a,b");
        assert_eq!(run("date(%d.%m.%Y)", "04.03.2012").unwrap(), "2012-03-04");
        assert_eq!(run("date(%d.%m.%Y)", "").unwrap(), "");
        assert!(run("date(%d.%m.%Y)", "2012-03-04").unwrap_err().contains("not a date"));
        assert_eq!(run("umlauts", "Jörg Weiß").unwrap(), "Joerg Weiss");
        assert!(Filter::parse("reverse").unwrap_err().contains("unknown filter"));
        assert!(Filter::parse("split()").is_err());
        assert_eq!(Filter::parse("date(%Y)").unwrap().to_string(), "date(%Y)");
    }
}
