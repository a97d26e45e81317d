//! Secrets in configuration: credentials come only from files
//! (`token_file`, `bind_password_file`), never from a URL's userinfo; and
//! what is shown to people (`info`, `authorities list|show`) has anything
//! secret-looking masked.

/// Whether `url` carries userinfo (`scheme://user[:password]@host…`).
pub fn has_userinfo(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    authority.contains('@')
}

/// The URL with its userinfo replaced by `***`, so it can be shown.
pub fn redact_url(url: &str) -> String {
    if !has_userinfo(url) {
        return url.to_string();
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let host = authority.rsplit_once('@').map(|(_, h)| h).unwrap_or(authority);
    format!("{scheme}://***@{host}{path}")
}

/// Refuses a URL with credentials in it, naming where credentials go.
pub fn check_url(url: &str, file_key: &str) -> Result<(), String> {
    if has_userinfo(url) {
        return Err(format!(
            "'{}' carries credentials (user:password@); remove them from the URL — credentials come \
             only from {file_key} (a file of mode 0600)",
            redact_url(url)
        ));
    }
    Ok(())
}

/// Whether a config key holds a secret itself (rather than a path to one).
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    !k.ends_with("_file")
        && [
            "password",
            "passwd",
            "token",
            "secret",
            "credential",
            "apikey",
            "api_key",
            "private_key",
        ]
        .iter()
        .any(|s| k.contains(s))
}

/// Masks, in place, every secret-looking value of a config table: values
/// of secret keys, and the userinfo of any URL.
pub fn mask(table: &mut toml::Table) {
    for (k, v) in table.iter_mut() {
        match v {
            toml::Value::Table(t) => mask(t),
            _ if is_secret_key(k) => *v = toml::Value::String("********".into()),
            toml::Value::String(s) if has_userinfo(s) => *s = redact_url(s),
            toml::Value::Array(items) => {
                for item in items {
                    match item {
                        toml::Value::String(s) if has_userinfo(s) => *s = redact_url(s),
                        toml::Value::Table(t) => mask(t),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_found_and_redacted() {
        assert!(has_userinfo("https://admin:s3cret@idm.example/scim/v2"));
        assert!(has_userinfo("ldaps://cn=x:pw@ldap.example"));
        assert!(!has_userinfo("https://idm.example/scim/v2?a=b@c"));
        assert!(!has_userinfo("https://idm.example/scim/v2"));
        assert_eq!(
            redact_url("https://admin:s3cret@idm.example/scim/v2"),
            "https://***@idm.example/scim/v2"
        );
        assert!(
            check_url("https://a:b@h/x", "token_file")
                .unwrap_err()
                .contains("token_file")
        );
        assert!(!check_url("https://a:b@h/x", "token_file").unwrap_err().contains(":b@"));
    }

    #[test]
    fn secret_looking_values_are_masked() {
        let mut t: toml::Table =
            "token = \"abc\"\ntoken_file = \"/t\"\n[a]\nurl = \"https://u:p@h/\"\nlist = [\"http://u:p@x\"]\n"
                .parse()
                .unwrap();
        mask(&mut t);
        let text = t.to_string();
        assert!(!text.contains("abc") && !text.contains("u:p@"), "{text}");
        assert!(text.contains("/t"));
    }
}
