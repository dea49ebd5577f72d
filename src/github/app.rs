//! GitHub App JWT signing: an RS256 JWT signed with the App's private key, which `auth.rs` trades
//! for an installation token for one repository. Deploy keys made with such a token outlive any person's account,
//! unlike keys made with a personal token (deleted with that token).

use crate::error::{Error, Result, Setting};
use crate::message;
use crate::secret::GithubToken;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use std::path::{Path, PathBuf};

/// A GitHub App's id and private key (`--app-id`, `--app-key FILE`).
pub struct AppCredentials {
    app_id: String,
    key_path: PathBuf,
    signing_key: rsa::pkcs1v15::SigningKey<sha2::Sha256>,
}

impl std::fmt::Debug for AppCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppCredentials")
            .field("app_id", &self.app_id)
            .field("key_path", &self.key_path)
            .field("signing_key", &"<redacted>")
            .finish()
    }
}

/// Refuses an App id that is neither a numeric App ID nor a client ID.
fn check_app_id(app_id: &str) -> Result<()> {
    let id_ok = !app_id.is_empty()
        && app_id.len() <= 64
        && app_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.');
    if !id_ok {
        return Err(Error::input(
            message!("{} {}", Setting::AppId, app_id.to_string()),
            "not a GitHub App ID",
            "pass the numeric App ID (or the Iv... client ID) from the App's settings page",
        ));
    }
    Ok(())
}

impl AppCredentials {
    /// Reads the App's private key (PKCS#1 PEM, as GitHub hands it out, or
    /// PKCS#8) and checks the App id (numeric App ID or `Iv...` client ID).
    pub fn from_file(app_id: &str, key_path: &Path) -> Result<Self> {
        check_app_id(app_id)?;
        Self::from_file_checked(app_id, key_path)
    }

    /// An App with a key already read (and checked) elsewhere; `label` names where it came from.
    pub fn from_key(app_id: &str, label: &Path, key: rsa::RsaPrivateKey) -> Result<Self> {
        check_app_id(app_id)?;
        Ok(Self {
            app_id: app_id.to_string(),
            key_path: label.to_path_buf(),
            signing_key: rsa::pkcs1v15::SigningKey::new(key),
        })
    }

    fn from_file_checked(app_id: &str, key_path: &Path) -> Result<Self> {
        let what = message!("{} {}", Setting::AppKey, key_path.display().to_string());
        // A regular file of at most 64 KiB (`/dev/zero` or a FIFO is refused, never read), kept
        // from other users as ssh requires of its keys.
        let (pem, meta) = crate::input_file::read_named_with_metadata(
            key_path,
            what.clone(),
            crate::input_file::PRIVATE_KEY_MAX,
        )
        .map_err(|e| match e {
            Error::File { source, .. } => Error::input(
                what.clone(),
                format!("cannot read the App's private key ({source})"),
                "pass the .pem file downloaded from the App's settings (Private keys > Generate)",
            )
            .caused_by(source),
            other => other,
        })?;
        crate::input_file::refuse_open_permissions(key_path, what.clone(), &meta)?;
        let text = std::str::from_utf8(&pem).map_err(|_| {
            Error::input(&what, "not a PEM file", "pass the App's .pem private key")
        })?;
        let key = rsa::RsaPrivateKey::from_pkcs1_pem(text)
            .or_else(|_| rsa::RsaPrivateKey::from_pkcs8_pem(text))
            .map_err(|_| {
                Error::input(
                    &what,
                    "not an RSA private key in PEM form",
                    "pass the App's .pem file as downloaded from its settings page (PKCS#1 or PKCS#8)",
                )
            })?;
        Ok(Self {
            app_id: app_id.to_string(),
            key_path: key_path.to_path_buf(),
            signing_key: rsa::pkcs1v15::SigningKey::new(key),
        })
    }

    /// The App id as given.
    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// A JWT for the App, valid from a minute ago (clock drift) for 9 minutes (GitHub allows 10).
    pub fn jwt(&self, now: jiff::Timestamp) -> GithubToken {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let iss = match self.app_id.parse::<u64>() {
            Ok(n) => serde_json::Value::from(n),
            Err(_) => serde_json::Value::from(self.app_id.clone()),
        };
        let claims = serde_json::json!({
            "iat": now.as_second() - 60,
            "exp": now.as_second() + 540,
            "iss": iss,
        });
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        let mut signed = format!("{header}.{payload}");
        let signature = self.signing_key.sign(signed.as_bytes()).to_bytes();
        signed.push('.');
        signed.push_str(&URL_SAFE_NO_PAD.encode(signature));
        GithubToken::new(signed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::signature::Verifier;

    #[test]
    fn jwt_is_rs256_signed_with_the_app_key_and_short_lived() {
        let dir = tempfile::tempdir().unwrap();
        let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
        let path = dir.path().join("app.TEST-ONLY.pem");
        std::fs::write(
            &path,
            key.to_pkcs1_pem(Default::default()).unwrap().as_bytes(),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let app = AppCredentials::from_file("12345", &path).unwrap();
        let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let jwt = app.jwt(now);
        let parts: Vec<&str> = jwt.expose_secret().split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "RS256");
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["iss"], 12345);
        assert_eq!(claims["iat"], 1_800_000_000 - 60);
        assert!(claims["exp"].as_i64().unwrap() - 1_800_000_000 <= 600);
        let verifying = rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(key.to_public_key());
        let sig = rsa::pkcs1v15::Signature::try_from(
            URL_SAFE_NO_PAD.decode(parts[2]).unwrap().as_slice(),
        )
        .unwrap();
        verifying
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
            .unwrap();
        let shown = format!("{:?}", super::super::Auth::App(Box::new(app)));
        let pem_text = key.to_pkcs1_pem(Default::default()).unwrap();
        let body_line = pem_text.lines().nth(1).unwrap();
        assert!(
            !shown.contains("BEGIN") && !shown.contains(body_line),
            "{shown}"
        );
        assert!(!shown.contains(jwt.expose_secret()), "{shown}");
    }

    #[test]
    fn unreadable_or_wrong_app_key_is_an_input_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = AppCredentials::from_file("1", &dir.path().join("missing.pem")).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.names(crate::error::Setting::AppKey), "{err}");
        let p = dir.path().join("x.pem");
        std::fs::write(&p, "not a key").unwrap();
        assert_eq!(
            AppCredentials::from_file("1", &p).unwrap_err().exit_code(),
            2
        );
        assert_eq!(
            AppCredentials::from_file("1 2", &p)
                .unwrap_err()
                .exit_code(),
            2
        );
    }
}
