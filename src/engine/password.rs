//! Initial passwords: random, and stored only as a salted hash in a scheme
//! the directory server verifies on bind.
//!
//! * `crypt` (default): `{CRYPT}$6$…`, SHA-512 crypt (5,000 rounds, 16
//!   characters of salt), which every stock OpenLDAP verifies through the
//!   system's crypt(3) — no module needed.
//! * `ssha256`: `{SSHA256}` + base64(SHA-256(password ‖ salt) ‖ salt), for
//!   servers with OpenLDAP's pw-sha2 module.
//! * `argon2`: `{ARGON2}$argon2id$…` (PHC string), for servers with the
//!   argon2 module.
//!
//! The passwords are 16 random characters (~94 bits), out of reach of
//! guessing whatever the scheme, and users replace them at first login.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// No look-alikes (0/O, 1/l/I) so passwords survive being read aloud.
const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
pub const LENGTH: usize = 16;

/// How initial passwords are hashed (`import.password_scheme`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    #[default]
    Crypt,
    Ssha256,
    Argon2,
}

/// `thread_rng` is a CSPRNG (ChaCha12) seeded and periodically reseeded from
/// the OS; drawing every character from the OS directly costs a syscall each.
pub fn generate() -> String {
    let mut rng = rand::thread_rng();
    (0..LENGTH)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Hashes in the default scheme (`{CRYPT}` SHA-512).
pub fn hash(password: &str) -> String {
    hash_with(Scheme::Crypt, password)
}

pub fn hash_with(scheme: Scheme, password: &str) -> String {
    match scheme {
        Scheme::Crypt => crypt_sha512(password, &rand::thread_rng().r#gen::<[u8; 12]>()),
        Scheme::Ssha256 => ssha256(password, &rand::thread_rng().r#gen::<[u8; 16]>()),
        Scheme::Argon2 => argon2(password, &rand::thread_rng().r#gen::<[u8; 16]>()),
    }
}

fn crypt_sha512(password: &str, salt: &[u8]) -> String {
    use sha_crypt::{PasswordHasher, ShaCrypt};
    // 12 salt bytes encode to the 16 characters crypt(3) reads; a failure
    // here would be a bug in the crate, and leaves the account without a
    // usable password rather than with a guessable one.
    match ShaCrypt::default().hash_password_with_salt(password.as_bytes(), salt) {
        Ok(h) => format!("{{CRYPT}}{h}"),
        Err(e) => {
            tracing::error!(error = %e, "SHA-512 crypt failed");
            "{CRYPT}!".to_string()
        }
    }
}

fn ssha256(password: &str, salt: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(password.as_bytes());
    h.update(salt);
    let mut blob = h.finalize().to_vec();
    blob.extend_from_slice(salt);
    format!("{{SSHA256}}{}", STANDARD.encode(blob))
}

fn argon2(password: &str, salt: &[u8]) -> String {
    use argon2::PasswordHasher;
    match argon2::Argon2::default().hash_password_with_salt(password.as_bytes(), salt) {
        Ok(h) => format!("{{ARGON2}}{h}"),
        Err(e) => {
            tracing::error!(error = %e, "argon2 failed");
            "{ARGON2}!".to_string()
        }
    }
}

/// Whether `password` matches a stored hash of any of the schemes.
pub fn verify(password: &str, stored: &str) -> bool {
    if let Some(h) = stored.strip_prefix("{CRYPT}") {
        use sha_crypt::{PasswordVerifier, ShaCrypt};
        return ShaCrypt::default().verify_password(password.as_bytes(), h).is_ok();
    }
    if let Some(h) = stored.strip_prefix("{ARGON2}") {
        use argon2::PasswordVerifier;
        let Ok(parsed) = argon2::password_hash::phc::PasswordHash::new(h) else {
            return false;
        };
        return argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
    }
    let Some(b64) = stored.strip_prefix("{SSHA256}") else {
        return false;
    };
    let Ok(blob) = STANDARD.decode(b64) else { return false };
    if blob.len() <= 32 {
        return false;
    }
    ssha256(password, &blob[32..]) == stored
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scheme_verifies_and_is_salted() {
        let pw = generate();
        assert_eq!(pw.len(), LENGTH);
        for (scheme, prefix) in [
            (Scheme::Crypt, "{CRYPT}$6$"),
            (Scheme::Ssha256, "{SSHA256}"),
            (Scheme::Argon2, "{ARGON2}$argon2id$"),
        ] {
            let a = hash_with(scheme, &pw);
            let b = hash_with(scheme, &pw);
            assert!(a.starts_with(prefix), "{a}");
            assert_ne!(a, b);
            assert!(verify(&pw, &a) && verify(&pw, &b), "{a}");
            assert!(!verify("wrong", &a));
            assert!(!a.contains(&pw));
        }
        assert!(hash(&pw).starts_with("{CRYPT}$6$"));
    }

    #[test]
    fn crypt_matches_the_reference_vector() {
        // From the SHA-crypt specification (Drepper), test 1 with the
        // default 5,000 rounds: salt "saltstring", key "Hello world!".
        use sha_crypt::PasswordVerifier;
        let reference =
            "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1";
        assert!(
            sha_crypt::ShaCrypt::default()
                .verify_password(b"Hello world!", reference)
                .is_ok()
        );
        assert!(verify("Hello world!", &format!("{{CRYPT}}{reference}")));
    }
}
