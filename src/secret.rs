//! Secret newtypes: private keys, tokens, identities and decrypted payloads.
//!
//! Every type here wipes its memory on drop, prints `Name(<redacted>)` under `{:?}`, and has no
//! `Display`, `Clone` or `Serialize`. The only way in is `expose_secret()`, so every read of a secret
//! is easy to grep for and to review.

use secrecy::{ExposeSecret, SecretBox, SecretString};
use zeroize::Zeroizing;

macro_rules! secret_text {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        pub struct $name(SecretString);

        impl $name {
            /// Takes ownership of the text; the caller's buffer moves in and is wiped on drop.
            pub fn new(text: String) -> Self {
                Self(SecretString::from(text))
            }

            /// The secret itself. Keep the borrow short and never log it.
            pub fn expose_secret(&self) -> &str {
                self.0.expose_secret()
            }
        }

        impl From<Zeroizing<String>> for $name {
            fn from(mut text: Zeroizing<String>) -> Self {
                Self::new(std::mem::take(&mut *text))
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "(<redacted>)"))
            }
        }
    };
}

secret_text!(
    /// An OpenSSH private key in PEM form, as `ssh-keygen` writes it.
    PrivateKeyPem
);
secret_text!(
    /// A GitHub credential: personal, fine-grained, installation or App JWT.
    GithubToken
);
secret_text!(
    /// An age identity file's text (`AGE-SECRET-KEY-1...` lines) or an SSH private key used as one.
    AgeIdentityText
);
secret_text!(
    /// Plaintext that holds secret values: an unsealed manifest stream, a decrypted SOPS file.
    SecretText
);

/// Raw secret bytes: data keys, decrypted values, base64 of a private key.
pub struct SecretBytes(SecretBox<[u8]>);

impl SecretBytes {
    /// Takes ownership of the bytes; they are wiped on drop.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(SecretBox::from(bytes.into_boxed_slice()))
    }

    /// The bytes themselves. Keep the borrow short and never log them.
    pub fn expose_secret(&self) -> &[u8] {
        self.0.expose_secret()
    }
}

impl From<Zeroizing<Vec<u8>>> for SecretBytes {
    fn from(mut bytes: Zeroizing<Vec<u8>>) -> Self {
        Self::new(std::mem::take(&mut *bytes))
    }
}

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBytes(<redacted>)")
    }
}

/// Zeroizes every string (keys and values) in a JSON tree: documents that held a private key
/// (emitted manifests, decrypted SOPS documents, Secrets read from the cluster) are wiped with it.
pub fn wipe_value(v: &mut serde_json::Value) {
    use serde_json::Value;
    use zeroize::Zeroize;
    match v {
        Value::String(s) => s.zeroize(),
        Value::Array(a) => a.iter_mut().for_each(wipe_value),
        Value::Object(m) => {
            let taken = std::mem::take(m);
            for (mut k, mut val) in taken {
                k.zeroize();
                wipe_value(&mut val);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANARY: &str = "CANARY-7f3a9-not-for-logs";

    #[test]
    fn debug_of_every_secret_type_hides_the_value() {
        let shown = [
            format!("{:?}", PrivateKeyPem::new(CANARY.into())),
            format!("{:?}", GithubToken::new(CANARY.into())),
            format!("{:?}", AgeIdentityText::new(CANARY.into())),
            format!("{:?}", SecretText::new(CANARY.into())),
            format!("{:?}", SecretBytes::new(CANARY.as_bytes().to_vec())),
        ];
        for s in shown {
            assert!(!s.contains(CANARY), "{s}");
            assert!(s.ends_with("(<redacted>)"), "{s}");
        }
    }

    #[test]
    fn expose_secret_returns_the_value() {
        assert_eq!(GithubToken::new(CANARY.into()).expose_secret(), CANARY);
        assert_eq!(SecretBytes::new(vec![1, 2]).expose_secret(), &[1, 2]);
    }
}

/// Why [`read_limited`] stopped.
#[derive(Debug)]
pub enum Limited {
    /// More than the limit.
    TooLarge,
    /// A read failed.
    Io(std::io::Error),
}

/// Reads at most `max` bytes (`TooLarge` if there are more) into a buffer wiped on drop,
/// growing it by copying into a fresh one and wiping the old (`Vec`'s own growth would leave
/// copies of the input in freed memory). `hint` is the expected size.
pub fn read_limited(
    mut r: impl std::io::Read,
    max: u64,
    hint: u64,
) -> Result<Zeroizing<Vec<u8>>, Limited> {
    let max = usize::try_from(max).unwrap_or(usize::MAX);
    let first = usize::try_from(hint)
        .unwrap_or(0)
        .min(max)
        .saturating_add(1)
        .max(8 * 1024);
    let mut buf = Zeroizing::new(Vec::with_capacity(first));
    loop {
        if buf.len() == buf.capacity() {
            let mut bigger = Zeroizing::new(Vec::with_capacity(buf.capacity().saturating_mul(2)));
            bigger.extend_from_slice(&buf);
            buf = bigger;
        }
        let len = buf.len();
        let capacity = buf.capacity();
        buf.resize(capacity, 0); // within capacity: no reallocation
        match r.read(&mut buf[len..]) {
            Ok(0) => {
                buf.truncate(len);
                return Ok(buf);
            }
            Ok(n) => {
                buf.truncate(len + n);
                if buf.len() > max {
                    return Err(Limited::TooLarge);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => buf.truncate(len),
            Err(e) => return Err(Limited::Io(e)),
        }
    }
}
