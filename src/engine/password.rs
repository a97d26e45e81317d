//! Initial passwords: random, and stored only as a salted hash.
//!
//! The format is `{SSHA256}` + base64(SHA-256(password ‖ salt) ‖ salt), the
//! salted-SHA-2 scheme LDAP servers understand (OpenLDAP's pw-sha2). A slow
//! KDF is not needed here: the passwords are 16 random characters (~94 bits),
//! out of reach of guessing, and users replace them at first login.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::Rng;
use sha2::{Digest, Sha256};

/// No look-alikes (0/O, 1/l/I) so passwords survive being read aloud.
const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
pub const LENGTH: usize = 16;

/// `thread_rng` is a CSPRNG (ChaCha12) seeded and periodically reseeded from
/// the OS; drawing every character from the OS directly costs a syscall each.
pub fn generate() -> String {
    let mut rng = rand::thread_rng();
    (0..LENGTH)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

pub fn hash(password: &str) -> String {
    let salt: [u8; 16] = rand::thread_rng().r#gen();
    hash_with_salt(password, &salt)
}

fn hash_with_salt(password: &str, salt: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(password.as_bytes());
    h.update(salt);
    let mut blob = h.finalize().to_vec();
    blob.extend_from_slice(salt);
    format!("{{SSHA256}}{}", STANDARD.encode(blob))
}

/// Whether `password` matches a stored `{SSHA256}` hash.
pub fn verify(password: &str, stored: &str) -> bool {
    let Some(b64) = stored.strip_prefix("{SSHA256}") else {
        return false;
    };
    let Ok(blob) = STANDARD.decode(b64) else { return false };
    if blob.len() <= 32 {
        return false;
    }
    hash_with_salt(password, &blob[32..]) == stored
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_are_salted() {
        let pw = generate();
        assert_eq!(pw.len(), LENGTH);
        let a = hash(&pw);
        let b = hash(&pw);
        assert_ne!(a, b);
        assert!(verify(&pw, &a) && verify(&pw, &b));
        assert!(!verify("wrong", &a));
        assert!(!a.contains(&pw));
    }
}
