//! SCRAM credentials (RFC 5802, with SHA-256 and SHA-512 as Kafka offers them, RFC 7677) as Kafka derives and
//! stores them: a client sends its salt, iteration count and salted password in AlterUserScramCredentials, and
//! the broker keeps only the stored key and server key derived from them, never the password.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::{digest, hmac, pbkdf2};

/// The fewest and most PBKDF2 iterations Kafka accepts for a credential.
pub const MIN_ITERATIONS: i32 = 4096;
pub const MAX_ITERATIONS: i32 = 16384;

/// Kafka's SCRAM mechanisms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScramMechanism {
    Sha256,
    Sha512,
}

impl ScramMechanism {
    /// From Kafka's mechanism type in AlterUserScramCredentials and DescribeUserScramCredentials.
    pub fn from_type(mechanism: i8) -> Option<Self> {
        match mechanism {
            1 => Some(ScramMechanism::Sha256),
            2 => Some(ScramMechanism::Sha512),
            _ => None,
        }
    }

    pub fn type_id(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    /// The mechanism of a SASL mechanism name; `None` for a mechanism that is not SCRAM.
    pub fn from_name(name: &str) -> Option<Self> {
        [ScramMechanism::Sha256, ScramMechanism::Sha512].into_iter().find(|m| m.name().eq_ignore_ascii_case(name))
    }

    /// The SASL mechanism name.
    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    fn hmac(self) -> hmac::Algorithm {
        match self {
            ScramMechanism::Sha256 => hmac::HMAC_SHA256,
            ScramMechanism::Sha512 => hmac::HMAC_SHA512,
        }
    }

    fn digest(self) -> &'static digest::Algorithm {
        match self {
            ScramMechanism::Sha256 => &digest::SHA256,
            ScramMechanism::Sha512 => &digest::SHA512,
        }
    }

    fn pbkdf2(self) -> pbkdf2::Algorithm {
        match self {
            ScramMechanism::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            ScramMechanism::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        }
    }

    /// SaltedPassword := Hi(password, salt, iterations) (PBKDF2 with this mechanism's HMAC).
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut out = vec![0u8; self.digest().output_len()];
        let iterations = std::num::NonZeroU32::new(iterations).unwrap_or(std::num::NonZeroU32::MIN);
        pbkdf2::derive(self.pbkdf2(), iterations, salt, password, &mut out);
        out
    }

    /// HMAC(key, data) with this mechanism's hash.
    pub fn hmac_sign(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        hmac::sign(&hmac::Key::new(self.hmac(), key), data).as_ref().to_vec()
    }

    /// H(data) with this mechanism's hash.
    pub fn hash(self, data: &[u8]) -> Vec<u8> {
        digest::digest(self.digest(), data).as_ref().to_vec()
    }

    /// (StoredKey, ServerKey) from a salted password: StoredKey := H(HMAC(SaltedPassword, "Client Key")),
    /// ServerKey := HMAC(SaltedPassword, "Server Key").
    pub fn stored_and_server_keys(self, salted_password: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let key = hmac::Key::new(self.hmac(), salted_password);
        let client_key = hmac::sign(&key, b"Client Key");
        let stored_key = digest::digest(self.digest(), client_key.as_ref()).as_ref().to_vec();
        let server_key = hmac::sign(&key, b"Server Key").as_ref().to_vec();
        (stored_key, server_key)
    }
}

/// Whether two keys are equal, comparing every byte whatever the first difference (no timing hint).
pub fn keys_equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |differences, (x, y)| differences | (x ^ y)) == 0
}

/// The client side of a SCRAM exchange (RFC 5802): the client-first message, then, from the server-first
/// message, the client-final message with its proof and the server signature the server-final must carry.
pub(crate) struct ScramClient {
    mechanism: ScramMechanism,
    password: String,
    client_first_bare: String,
    nonce: String,
}

impl ScramClient {
    pub(crate) fn new(mechanism: ScramMechanism, username: &str, password: &str, nonce: &str) -> Self {
        // RFC 5802 5.1: ',' and '=' in a name are escaped.
        let name = username.replace('=', "=3D").replace(',', "=2C");
        ScramClient {
            mechanism,
            password: password.to_owned(),
            client_first_bare: format!("n={name},r={nonce}"),
            nonce: nonce.to_owned(),
        }
    }

    pub(crate) fn first(&self) -> String {
        format!("n,,{}", self.client_first_bare)
    }

    /// The client-final message and the expected server signature.
    pub(crate) fn finish(&self, server_first: &str) -> Result<(String, Vec<u8>), &'static str> {
        let field = |name: &str| server_first.split(',').find_map(|part| part.strip_prefix(name));
        let nonce = field("r=").ok_or("the server-first message has no nonce")?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err("the server's nonce does not extend the client's");
        }
        let salt =
            field("s=").and_then(|salt| BASE64.decode(salt).ok()).ok_or("the server-first message has no salt")?;
        let iterations = field("i=")
            .and_then(|count| count.parse::<u32>().ok())
            .filter(|count| *count >= 1 && *count <= 1_000_000)
            .ok_or("the server-first message has no usable iteration count")?;
        let mechanism = self.mechanism;
        let salted = mechanism.salted_password(self.password.as_bytes(), &salt, iterations);
        let client_key = mechanism.hmac_sign(&salted, b"Client Key");
        let stored_key = mechanism.hash(&client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let signature = mechanism.hmac_sign(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&signature).map(|(key, sig)| key ^ sig).collect();
        let server_key = mechanism.hmac_sign(&salted, b"Server Key");
        let server_signature = mechanism.hmac_sign(&server_key, auth_message.as_bytes());
        Ok((format!("{without_proof},p={}", BASE64.encode(proof)), server_signature))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn keys_match_rfc_7677s_example() {
        // RFC 7677 section 3: user "user", password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ== and 4096
        // iterations. With this server key the example's ServerSignature (v=6rriTRBi...) checks out.
        let salt = [0x5b, 0x6d, 0x99, 0x68, 0x9d, 0x12, 0x35, 0x8e, 0xec, 0xa0, 0x4b, 0x14, 0x12, 0x36, 0xfa, 0x81];
        let salted = ScramMechanism::Sha256.salted_password(b"pencil", &salt, 4096);
        assert_eq!(hex(&salted), "c4a49510323ab4f952cac1fa99441939e78ea74d6be81ddf7096e87513dc615d");
        let (stored, server) = ScramMechanism::Sha256.stored_and_server_keys(&salted);
        assert_eq!(hex(&stored), "586e5df283e6dceb5c3e791d8b8528ec191e664045ce971792e2e6b5bb13e2a6");
        assert_eq!(hex(&server), "c1f3cbc1c13a9d35a14c0990eed97629ea225863e566a4314ab99f3f00e5d9d5");
        let (stored512, _) = ScramMechanism::Sha512.stored_and_server_keys(&salted);
        assert_eq!(stored512.len(), 64);
    }

    #[test]
    fn mechanism_types_are_kafkas() {
        assert_eq!(ScramMechanism::from_type(1).map(ScramMechanism::name), Some("SCRAM-SHA-256"));
        assert_eq!(ScramMechanism::from_type(2).map(ScramMechanism::name), Some("SCRAM-SHA-512"));
        assert_eq!(ScramMechanism::from_type(0), None);
    }
}
