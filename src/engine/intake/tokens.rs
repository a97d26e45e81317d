//! The upload API's bearer tokens (`[intake.tokens.NAME]`): read once from
//! files only their owner may read, kept as SHA-256 digests, compared in
//! constant time against every configured token (neither which token nor
//! how much of it matched shows in the time taken), each scoped to its
//! schools. A token's value is never logged nor put in any record; its
//! name is.

use crate::engine::EngineResult;
use crate::engine::config::IntakeConfig;
use sha2::{Digest, Sha256};
use std::path::Path;
use subtle::ConstantTimeEq;

/// One configured token.
#[derive(Clone)]
pub struct Token {
    pub name: String,
    digest: [u8; 32],
    /// Lowercase school names, or `*`.
    schools: Vec<String>,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("name", &self.name)
            .field("schools", &self.schools)
            .finish_non_exhaustive()
    }
}

impl Token {
    /// Whether this token may post feeds for and read runs of `school`.
    pub fn allows(&self, school: &str) -> bool {
        let school = school.to_lowercase();
        self.schools.iter().any(|s| s == "*" || *s == school)
    }

    /// Whether this token covers every school.
    pub fn all_schools(&self) -> bool {
        self.schools.iter().any(|s| s == "*")
    }
}

/// The configured tokens.
#[derive(Clone, Debug, Default)]
pub struct Tokens(Vec<Token>);

impl Tokens {
    /// Reads every token file; refuses one that group or others may read,
    /// or an empty one.
    pub fn load(cfg: &IntakeConfig) -> EngineResult<Tokens> {
        let mut out = Vec::new();
        for (name, t) in &cfg.tokens {
            let key = format!("intake.tokens.{name}.token_file");
            let secret = crate::engine::sync::target::read_secret(Path::new(&t.token_file), &key)?;
            out.push(Token {
                name: name.clone(),
                digest: Sha256::digest(secret.as_bytes()).into(),
                schools: t.schools.iter().map(|s| s.to_lowercase()).collect(),
            });
        }
        Ok(Tokens(out))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The token `presented` is, if any. Every token is compared, each in
    /// constant time over fixed-length digests.
    pub fn check(&self, presented: &[u8]) -> Option<&Token> {
        let digest: [u8; 32] = Sha256::digest(presented).into();
        let mut found = None;
        for t in &self.0 {
            if bool::from(t.digest.ct_eq(&digest)) {
                found = Some(t);
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::config::IntakeToken;
    use std::os::unix::fs::PermissionsExt;

    fn cfg(dir: &Path, mode: u32) -> IntakeConfig {
        let file = dir.join("t");
        std::fs::write(&file, "s3cret-token\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
        let mut c: crate::engine::config::Config =
            toml::from_str(crate::engine::config::DEFAULTS).expect("defaults parse");
        c.intake.tokens.insert(
            "sis".into(),
            IntakeToken {
                token_file: file.display().to_string(),
                schools: vec!["GSMitte".into()],
            },
        );
        c.intake
    }

    #[test]
    fn tokens_match_and_scope() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = Tokens::load(&cfg(dir.path(), 0o600)).unwrap();
        let t = tokens.check(b"s3cret-token").expect("matches");
        assert_eq!(t.name, "sis");
        assert!(t.allows("gsmitte"));
        assert!(!t.allows("gsost"));
        assert!(tokens.check(b"s3cret-toke").is_none());
        assert!(tokens.check(b"").is_none());
        assert!(!format!("{t:?}").contains("s3cret"));
    }

    #[test]
    fn a_token_file_others_may_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = Tokens::load(&cfg(dir.path(), 0o640)).unwrap_err().to_string();
        assert!(err.contains("intake.tokens.sis.token_file"), "{err}");
        assert!(err.contains("chmod 600"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
    }
}
