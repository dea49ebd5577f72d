//! Deploy key generation: passphrase-less OpenSSH keys made in memory, never written to disk.

use crate::error::{Error, Result};
use crate::secret::PrivateKeyPem;
use rand_core::OsRng;
use ssh_key::private::{EcdsaKeypair, KeypairData, RsaKeypair};
use ssh_key::{EcdsaCurve, HashAlg, LineEnding, PrivateKey};

/// First line of an OpenSSH private key. Spelled in two parts so that leak scanners grepping the
/// repository for key headers find real keys only.
pub const OPENSSH_PRIVATE_KEY_HEADER: &str = concat!("-----BEGIN OPENSSH ", "PRIVATE KEY-----");

/// First line of a PKCS#1 RSA private key (same spelling reason).
pub const RSA_PRIVATE_KEY_HEADER: &str = concat!("-----BEGIN RSA ", "PRIVATE KEY-----");

/// The key algorithms sealkey generates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyType {
    /// Ed25519: small, fast, accepted by GitHub and every current OpenSSH.
    #[default]
    Ed25519,
    /// ECDSA on NIST P-256.
    EcdsaP256,
    /// ECDSA on NIST P-384 (Flux's default).
    EcdsaP384,
    /// RSA, 3072-bit modulus.
    #[value(name = "rsa-3072")]
    #[serde(rename = "rsa-3072")]
    Rsa3072,
    /// RSA, 4096-bit modulus.
    #[value(name = "rsa-4096")]
    #[serde(rename = "rsa-4096")]
    Rsa4096,
}

impl KeyType {
    /// The name used on the command line and in annotations.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::Ed25519 => "ed25519",
            KeyType::EcdsaP256 => "ecdsa-p256",
            KeyType::EcdsaP384 => "ecdsa-p384",
            KeyType::Rsa3072 => "rsa-3072",
            KeyType::Rsa4096 => "rsa-4096",
        }
    }

    /// Parses a name as typed on the command line.
    pub fn parse(name: &str) -> Result<Self> {
        <KeyType as clap::ValueEnum>::from_str(name, true).map_err(|_| {
            Error::input(
                crate::message!("{} {}", crate::error::Setting::KeyType, name.to_string()),
                "unknown key type",
                "use one of ed25519 (default), ecdsa-p256, ecdsa-p384, rsa-3072, rsa-4096",
            )
        })
    }
}

/// A freshly generated deploy key. The private half never leaves this value unencrypted except
/// through [`DeployKey::private_pem`], which returns another secret type.
pub struct DeployKey {
    private: PrivateKey,
    key_type: KeyType,
    public_openssh: String,
    fingerprint: String,
}

impl std::fmt::Debug for DeployKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeployKey")
            .field("key_type", &self.key_type)
            .field("fingerprint", &self.fingerprint)
            .field("private", &"<redacted>")
            .finish()
    }
}

impl DeployKey {
    /// Generates a key of `key_type` with `comment` from the operating system's CSPRNG.
    pub fn generate(key_type: KeyType, comment: &str) -> Result<Self> {
        let fail = |e: ssh_key::Error| {
            Error::crypto(
                format!("{} key generation", key_type.as_str()),
                e.to_string(),
                "retry; if it persists, report it",
            )
        };
        let data = match key_type {
            KeyType::Ed25519 => {
                KeypairData::from(ssh_key::private::Ed25519Keypair::random(&mut OsRng))
            }
            KeyType::EcdsaP256 => KeypairData::from(
                EcdsaKeypair::random(&mut OsRng, EcdsaCurve::NistP256).map_err(fail)?,
            ),
            KeyType::EcdsaP384 => KeypairData::from(
                EcdsaKeypair::random(&mut OsRng, EcdsaCurve::NistP384).map_err(fail)?,
            ),
            KeyType::Rsa3072 => KeypairData::from(rsa_keypair(3072).map_err(fail)?),
            KeyType::Rsa4096 => KeypairData::from(rsa_keypair(4096).map_err(fail)?),
        };
        let private = PrivateKey::new(data, comment).map_err(fail)?;
        Self::from_private(private, key_type)
    }

    /// Wraps an existing OpenSSH private key (for example one read back from a live Secret).
    pub fn from_openssh(pem: &PrivateKeyPem, what: &str) -> Result<Self> {
        let private = PrivateKey::from_openssh(pem.expose_secret().as_bytes()).map_err(|e| {
            Error::input(
                what,
                format!("not an OpenSSH private key ({e})"),
                "expected an OpenSSH private key (ssh-keygen's default format)",
            )
            .caused_by(e)
        })?;
        if private.is_encrypted() {
            return Err(Error::input(
                what,
                "the private key has a passphrase",
                "deploy keys used by pods must be passphrase-less",
            ));
        }
        let key_type = match private.key_data() {
            KeypairData::Ed25519(_) => KeyType::Ed25519,
            KeypairData::Ecdsa(k) if k.curve() == EcdsaCurve::NistP256 => KeyType::EcdsaP256,
            KeypairData::Ecdsa(k) if k.curve() == EcdsaCurve::NistP384 => KeyType::EcdsaP384,
            KeypairData::Rsa(k)
                if k.public
                    .n
                    .as_positive_bytes()
                    .map(|b| b.len() * 8)
                    .unwrap_or(0)
                    <= 3072 =>
            {
                KeyType::Rsa3072
            }
            KeypairData::Rsa(_) => KeyType::Rsa4096,
            _ => {
                return Err(Error::input(
                    what,
                    "unsupported key algorithm",
                    "use ed25519, ecdsa-p256, ecdsa-p384 or rsa",
                ))
            }
        };
        Self::from_private(private, key_type)
    }

    fn from_private(private: PrivateKey, key_type: KeyType) -> Result<Self> {
        let public_openssh = private
            .public_key()
            .to_openssh()
            .map_err(|e| Error::crypto("public key encoding", e.to_string(), "report it"))?;
        let fingerprint = private
            .public_key()
            .fingerprint(HashAlg::Sha256)
            .to_string();
        Ok(Self {
            private,
            key_type,
            public_openssh,
            fingerprint,
        })
    }

    /// The key's algorithm.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// The public key as one OpenSSH line (`ssh-ed25519 AAAA... comment`).
    pub fn public_openssh(&self) -> &str {
        &self.public_openssh
    }

    /// The public key without its comment (`ssh-ed25519 AAAA...`), the form GitHub lists.
    pub fn public_key_bare(&self) -> String {
        self.public_openssh
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The comment stored in the key.
    pub fn comment(&self) -> &str {
        self.private.comment()
    }

    /// `SHA256:...`, as `ssh-keygen -l` and GitHub print it.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The passphrase-less OpenSSH private key, with a trailing newline (OpenSSH wants one).
    pub fn private_pem(&self) -> Result<PrivateKeyPem> {
        let pem = self
            .private
            .to_openssh(LineEnding::LF)
            .map_err(|e| Error::crypto("private key encoding", e.to_string(), "report it"))?;
        Ok(PrivateKeyPem::from(pem))
    }
}

/// RSA with e = 65537, the two primes searched for in parallel (one thread each): prime search
/// dominates RSA key generation, so this halves the wall time on two or more cores.
fn rsa_keypair(bits: usize) -> std::result::Result<RsaKeypair, ssh_key::Error> {
    use num_bigint_dig::{BigUint, RandPrime};
    let half = bits / 2;
    loop {
        let (p, q) = std::thread::scope(|s| {
            let other = s.spawn(move || OsRng.gen_prime(half));
            let p: BigUint = OsRng.gen_prime(half);
            (p, other.join().expect("prime search thread panicked"))
        });
        // gen_prime sets the top two bits, so p*q always has exactly `bits` bits; p == q is
        // astronomically unlikely but cheap to rule out, as the rsa crate does.
        if p == q {
            continue;
        }
        let key = rsa::RsaPrivateKey::from_p_q(p, q, BigUint::from(65_537u32))
            .map_err(|_| ssh_key::Error::Crypto)?;
        if rsa::traits::PublicKeyParts::n(&key).bits() != bits {
            continue;
        }
        return RsaKeypair::try_from(key);
    }
}

/// Computes the `SHA256:...` fingerprint of one OpenSSH public key line.
pub fn fingerprint_of_public(line: &str) -> Result<String> {
    let key = ssh_key::PublicKey::from_openssh(line.trim()).map_err(|e| {
        Error::input(
            "public key",
            format!("not an OpenSSH public key ({e})"),
            "expected a line like `ssh-ed25519 AAAA... comment`",
        )
        .caused_by(e)
    })?;
    Ok(key.fingerprint(HashAlg::Sha256).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fast_key_type_round_trips_through_openssh_pem() {
        for kt in [KeyType::Ed25519, KeyType::EcdsaP256, KeyType::EcdsaP384] {
            let key = DeployKey::generate(kt, "sealkey:acme/dags").unwrap();
            let pem = key.private_pem().unwrap();
            assert!(pem
                .expose_secret()
                .starts_with(&format!("{OPENSSH_PRIVATE_KEY_HEADER}\n")));
            assert!(pem
                .expose_secret()
                .ends_with("-----END OPENSSH PRIVATE KEY-----\n"));
            let back = DeployKey::from_openssh(&pem, "test").unwrap();
            assert_eq!(back.fingerprint(), key.fingerprint());
            assert_eq!(back.key_type(), kt);
            assert!(key.public_openssh().ends_with(" sealkey:acme/dags"));
            assert_eq!(
                fingerprint_of_public(key.public_openssh()).unwrap(),
                key.fingerprint()
            );
        }
    }

    #[test]
    fn two_keys_differ() {
        let a = DeployKey::generate(KeyType::Ed25519, "a").unwrap();
        let b = DeployKey::generate(KeyType::Ed25519, "a").unwrap();
        assert_ne!(a.fingerprint(), b.fingerprint());
    }

    #[test]
    fn debug_hides_the_private_key() {
        let key = DeployKey::generate(KeyType::Ed25519, "c").unwrap();
        let pem = key.private_pem().unwrap();
        let body: String = pem.expose_secret().lines().nth(1).unwrap().into();
        assert!(!format!("{key:?}").contains(&body));
    }

    #[test]
    fn unknown_key_type_is_an_input_error() {
        let err = KeyType::parse("dsa").unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.names(crate::error::Setting::KeyType), "{err}");
        assert!(err.to_string().contains("key_type dsa"), "{err}");
    }
}
