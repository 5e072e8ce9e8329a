//! The client side of SASL SCRAM-SHA-256/512 (RFC 5802, RFC 7677) as Kafka speaks it (no channel
//! binding, `n,,` header), on ring's HMAC, PBKDF2 and digests.

use std::num::NonZeroU32;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ring::{digest, hmac, pbkdf2, rand::SecureRandom};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScramHash {
    Sha256,
    Sha512,
}

impl ScramHash {
    fn hmac(self) -> hmac::Algorithm {
        match self {
            ScramHash::Sha256 => hmac::HMAC_SHA256,
            ScramHash::Sha512 => hmac::HMAC_SHA512,
        }
    }
    fn pbkdf2(self) -> pbkdf2::Algorithm {
        match self {
            ScramHash::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            ScramHash::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        }
    }
    fn digest(self) -> &'static digest::Algorithm {
        match self {
            ScramHash::Sha256 => &digest::SHA256,
            ScramHash::Sha512 => &digest::SHA512,
        }
    }
    fn len(self) -> usize {
        self.digest().output_len()
    }
}

/// One SCRAM exchange: [`Scram::client_first`], then [`Scram::client_final`] with the server's first
/// message, then [`Scram::verify_server_final`].
pub struct Scram {
    hash: ScramHash,
    password: String,
    nonce: String,
    client_first_bare: String,
    server_signature: Vec<u8>,
}

/// `=` and `,` are escaped in SCRAM user names.
fn saslname(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

impl Scram {
    pub fn new(hash: ScramHash, username: &str, password: &str) -> Result<Scram, String> {
        let mut raw = [0u8; 24];
        ring::rand::SystemRandom::new()
            .fill(&mut raw)
            .map_err(|_| "no randomness for the SCRAM nonce".to_owned())?;
        Ok(Self::with_nonce(hash, username, password, &B64.encode(raw)))
    }

    fn with_nonce(hash: ScramHash, username: &str, password: &str, nonce: &str) -> Scram {
        Scram {
            hash,
            password: password.to_owned(),
            nonce: nonce.to_owned(),
            client_first_bare: format!("n={},r={nonce}", saslname(username)),
            server_signature: Vec::new(),
        }
    }

    pub fn client_first(&self) -> Vec<u8> {
        format!("n,,{}", self.client_first_bare).into_bytes()
    }

    /// The client-final message for the server-first message `server_first`.
    pub fn client_final(&mut self, server_first: &[u8]) -> Result<Vec<u8>, String> {
        let server_first = std::str::from_utf8(server_first)
            .map_err(|_| "the SCRAM server-first message is not UTF-8".to_owned())?;
        let mut nonce = None;
        let mut salt = None;
        let mut iterations = None;
        for attr in server_first.split(',') {
            match attr.split_once('=') {
                Some(("r", v)) => nonce = Some(v),
                Some(("s", v)) => salt = Some(v),
                Some(("i", v)) => iterations = v.parse::<u32>().ok(),
                Some(("e", v)) => return Err(format!("the broker refused SCRAM: {v}")),
                _ => {}
            }
        }
        let (Some(nonce), Some(salt), Some(iterations)) = (nonce, salt, iterations) else {
            return Err(format!(
                "malformed SCRAM server-first message {server_first:?}"
            ));
        };
        if !nonce.starts_with(&self.nonce) {
            return Err("the SCRAM server nonce does not extend the client's".into());
        }
        let salt = B64
            .decode(salt)
            .map_err(|_| "the SCRAM salt is not base64".to_owned())?;
        let iterations =
            NonZeroU32::new(iterations).ok_or_else(|| "SCRAM iteration count 0".to_owned())?;
        let mut salted = vec![0u8; self.hash.len()];
        pbkdf2::derive(
            self.hash.pbkdf2(),
            iterations,
            &salt,
            self.password.as_bytes(),
            &mut salted,
        );
        let salted_key = hmac::Key::new(self.hash.hmac(), &salted);
        let client_key = hmac::sign(&salted_key, b"Client Key");
        let stored_key = digest::digest(self.hash.digest(), client_key.as_ref());
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let client_signature = hmac::sign(
            &hmac::Key::new(self.hash.hmac(), stored_key.as_ref()),
            auth_message.as_bytes(),
        );
        let proof: Vec<u8> = client_key
            .as_ref()
            .iter()
            .zip(client_signature.as_ref())
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = hmac::sign(&salted_key, b"Server Key");
        self.server_signature = hmac::sign(
            &hmac::Key::new(self.hash.hmac(), server_key.as_ref()),
            auth_message.as_bytes(),
        )
        .as_ref()
        .to_vec();
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// Checks the server-final message: the broker proves it knows the password too.
    pub fn verify_server_final(&self, server_final: &[u8]) -> Result<(), String> {
        let text = String::from_utf8_lossy(server_final);
        if let Some(e) = text.strip_prefix("e=") {
            return Err(format!("the broker refused SCRAM: {e}"));
        }
        let signature = text
            .strip_prefix("v=")
            .and_then(|v| B64.decode(v.split(',').next().unwrap_or(v)).ok())
            .ok_or_else(|| format!("malformed SCRAM server-final message {text:?}"))?;
        if signature != self.server_signature {
            return Err("the broker's SCRAM signature does not match".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677's SCRAM-SHA-256 example.
    #[test]
    fn rfc7677_example() {
        let mut scram =
            Scram::with_nonce(ScramHash::Sha256, "user", "pencil", "rOprNGfwEbeRWgbNEkqO");
        assert_eq!(scram.client_first(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first = b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let client_final = scram.client_final(server_first).expect("client final");
        assert_eq!(
            String::from_utf8(client_final).expect("utf-8"),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        scram
            .verify_server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .expect("server signature");
        assert!(
            scram
                .verify_server_final(b"v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
                .is_err()
        );
        assert!(scram.verify_server_final(b"e=invalid-proof").is_err());
    }

    #[test]
    fn user_names_are_escaped_and_foreign_nonces_refused() {
        let mut scram = Scram::with_nonce(ScramHash::Sha512, "a=b,c", "pw", "abc");
        assert_eq!(scram.client_first(), b"n,,n=a=3Db=2Cc,r=abc");
        assert!(scram.client_final(b"r=xyz,s=AAAA,i=4096").is_err());
    }
}
