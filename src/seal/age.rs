//! age: recipients as `age -R` reads them, armored encryption, and decryption with identities.

use crate::error::{Error, Message, Result, Setting};
use crate::message;
use crate::secret::{AgeIdentityText, SecretBytes};
use std::io::{BufRead, Read, Write};
use std::path::Path;
use zeroize::Zeroizing;

/// An age recipient, parsed and ready to encrypt to.
pub type Recipient = Box<dyn ::age::Recipient + Send>;

/// A parsed age identity (X25519 or SSH).
pub type Identity = Box<dyn ::age::Identity + Send + Sync>;

/// The recipient kinds `--seal-to` accepts, for messages.
const RECIPIENT_HINT: &str = "pass an age1... X25519 recipient, an `ssh-ed25519 AAAA...` or `ssh-rsa AAAA...` public key, or a file of them (one per line, # comments)";

/// Parses each `--seal-to` value: an `age1...` recipient, an SSH public key line, or a recipients
/// file (one per line, `#` comments, blank lines ignored), exactly as `age -R` reads files.
pub fn parse_recipients(specs: &[String]) -> Result<Vec<Recipient>> {
    Ok(parse_recipient_lines(specs)?
        .into_iter()
        .map(|(_, r)| r)
        .collect())
}

/// Like [`parse_recipients`], keeping each recipient's text (`age1...`, `ssh-ed25519 AAAA...`),
/// which SOPS writes into its `sops.age[].recipient` entries.
pub fn parse_recipient_lines(specs: &[String]) -> Result<Vec<(String, Recipient)>> {
    let mut out = Vec::new();
    for spec in specs {
        let spec = spec.trim();
        if looks_like_secret(spec) {
            // Said what it is, never repeated (not even as a file name).
            parse_one(
                spec,
                &message!(
                    "{} (a secret given where a recipient belongs)",
                    Setting::SealTo
                ),
            )?;
        } else if looks_like_recipient(spec) {
            out.push((
                spec.to_string(),
                parse_one(spec, &message!("{} {}", Setting::SealTo, shorten(spec)))?,
            ));
        } else {
            out.extend(read_recipients_file(Path::new(spec))?);
        }
    }
    if out.is_empty() {
        return Err(Error::input(
            Setting::SealTo,
            "no recipients given",
            RECIPIENT_HINT,
        ));
    }
    Ok(out)
}

/// An age identity or a private key: secrets, whatever flag they were given to.
fn looks_like_secret(s: &str) -> bool {
    s.starts_with("AGE-SECRET-KEY-") || s.contains("PRIVATE KEY-----")
}

fn looks_like_recipient(s: &str) -> bool {
    s.starts_with("age1")
        || s.starts_with("ssh-")
        || s.starts_with("ecdsa-sha2-")
        || s.starts_with("sk-")
}

/// A recipient (or other input text) for a message: controls escaped, at most 40 characters,
/// cut on a character boundary (a byte cut panicked on a multibyte character: found by the
/// `sops_reader` fuzz target).
pub(crate) fn shorten(s: &str) -> String {
    let s = crate::audit::report::text::printable(s);
    if s.chars().count() > 40 {
        format!("{}...", s.chars().take(37).collect::<String>())
    } else {
        s.into_owned()
    }
}

/// Reads a recipients file as `age -R` does, keeping each recipient's text.
pub fn read_recipients_file(path: &Path) -> Result<Vec<(String, Recipient)>> {
    let unreadable = |e: std::io::Error| {
        Error::input(
            message!("{} {}", Setting::SealTo, path.display().to_string()),
            format!("neither a recipient nor a readable recipients file ({e})"),
            RECIPIENT_HINT,
        )
        .caused_by(e)
    };
    let what = message!("{} {}", Setting::SealTo, path.display().to_string());
    let bytes = match crate::input_file::read_regular(path, crate::input_file::LIST_MAX) {
        Ok((bytes, _)) => bytes,
        Err(crate::input_file::Unreadable::Io(e)) => return Err(unreadable(e)),
        // Perhaps a mistyped recipient that names a directory or a device: never opened.
        Err(crate::input_file::Unreadable::NotRegular {
            kind,
            through_symlink,
        }) => {
            return Err(Error::input(
                what,
                format!(
                "neither a recipient nor a readable recipients file ({}{kind}, not a regular file)",
                if through_symlink { "a symlink to " } else { "" }
            ),
                RECIPIENT_HINT,
            ))
        }
        Err(e) => {
            return Err(crate::input_file::refusal(
                path,
                what,
                crate::input_file::LIST_MAX,
                e,
            ))
        }
    };
    let mut out = Vec::new();
    for (n, line) in bytes.as_slice().lines().enumerate() {
        let line = line.map_err(unreadable)?;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        out.push((
            line.to_string(),
            parse_one(line, &format!("{} line {}", path.display(), n + 1).into())?,
        ));
    }
    if out.is_empty() {
        return Err(Error::input(
            message!("{} {}", Setting::SealTo, path.display().to_string()),
            "the file holds no recipients",
            RECIPIENT_HINT,
        ));
    }
    Ok(out)
}

/// Parses one recipient (`age1...` X25519 or an `ssh-ed25519`/`ssh-rsa` public key line); `what`
/// names it in errors.
pub fn parse_recipient(s: &str, what: impl Into<Message>) -> Result<Recipient> {
    parse_one(s.trim(), &what.into())
}

fn parse_one(s: &str, what: &Message) -> Result<Recipient> {
    // A secret where a public recipient belongs: say so (never echo it), and how to get the
    // public half.
    if s.starts_with("AGE-SECRET-KEY-") {
        return Err(Error::input(
            what,
            "this is an age secret identity (AGE-SECRET-KEY-...), not a recipient: keep it private",
            "pass its public half, which `age-keygen -y IDENTITY_FILE` prints (age1...)",
        ));
    }
    if s.contains("PRIVATE KEY-----") {
        return Err(Error::input(
            what,
            "this is a private key, not a recipient: keep it private",
            "pass its public half, which `ssh-keygen -y -f KEY_FILE` prints (ssh-ed25519 ...)",
        ));
    }
    if s.starts_with("age1") {
        // X25519 first: its bech32 data can start with any letters, "pq" and "se" included.
        if let Ok(r) = s.parse::<::age::x25519::Recipient>() {
            return Ok(Box::new(r));
        }
        // Plugin and post-quantum recipients carry their own prefix before the separator `1`.
        let prefix = s.split('1').nth(1).unwrap_or_default();
        if ["pq", "yubikey", "tpm", "se"].contains(&prefix) {
            return Err(Error::input(
                what,
                "plugin and post-quantum recipients are not supported",
                "use an X25519 age1... recipient or an ssh-ed25519 key",
            ));
        }
        return s
            .parse::<::age::x25519::Recipient>()
            .map(|r| Box::new(r) as Recipient)
            .map_err(|e| {
                Error::input(
                    what,
                    format!("not a valid age recipient ({e})"),
                    "copy the full age1... line printed by `age-keygen -y` (62 characters)",
                )
            });
    }
    use ::age::ssh::ParseRecipientKeyError as P;
    match s.parse::<::age::ssh::Recipient>() {
        Ok(r) => Ok(Box::new(r)),
        Err(P::RsaModulusTooSmall) => Err(Error::input(what, "ssh-rsa key is shorter than 2048 bits", "use an ssh-ed25519 key or a larger RSA key")),
        Err(P::RsaModulusTooLarge) => Err(Error::input(what, "ssh-rsa key is larger than age supports", "use an ssh-ed25519 key")),
        Err(P::Ignore) | Err(P::Unsupported(_)) => Err(Error::input(
            what,
            "this SSH key type cannot be an age recipient (age supports ssh-ed25519 and ssh-rsa only)",
            RECIPIENT_HINT,
        )),
        Err(P::Invalid(why)) => Err(Error::input(what, format!("not a valid SSH public key ({why})"), RECIPIENT_HINT)),
        Err(_) => Err(Error::input(what, "not a usable SSH public key", RECIPIENT_HINT)),
    }
}

/// Encrypts `plaintext` to `recipients` as an ASCII-armored age file.
pub fn seal_text(plaintext: &[u8], recipients: &[Recipient]) -> Result<String> {
    let fail = |e: &dyn std::fmt::Display| {
        Error::crypto("age encryption", e.to_string(), "check the recipients")
    };
    let encryptor = ::age::Encryptor::with_recipients(
        recipients
            .iter()
            .map(|r| r.as_ref() as &dyn ::age::Recipient),
    )
    .map_err(|e| fail(&e))?;
    let mut out = Vec::with_capacity(plaintext.len() * 4 / 3 + 512);
    let armor =
        ::age::armor::ArmoredWriter::wrap_output(&mut out, ::age::armor::Format::AsciiArmor)
            .map_err(|e| fail(&e))?;
    let mut writer = encryptor.wrap_output(armor).map_err(|e| fail(&e))?;
    writer.write_all(plaintext).map_err(|e| fail(&e))?;
    writer
        .finish()
        .and_then(|armor| armor.finish())
        .map_err(|e| fail(&e))?;
    String::from_utf8(out).map_err(|e| fail(&e))
}

/// Parses an identity: age identity lines (`AGE-SECRET-KEY-1...`) or one passphrase-less SSH
/// private key (ed25519 or RSA). `what` names the source in errors.
pub fn parse_identities(text: &AgeIdentityText, what: &str) -> Result<Vec<Identity>> {
    let body = text.expose_secret();
    if body.contains(crate::keygen::OPENSSH_PRIVATE_KEY_HEADER)
        || body.contains(crate::keygen::RSA_PRIVATE_KEY_HEADER)
    {
        let id = ::age::ssh::Identity::from_buffer(body.as_bytes(), Some(what.to_string()))
            .map_err(|e| {
                Error::input(
                    what,
                    format!("not a usable SSH identity ({e})"),
                    "use an ssh-ed25519 or ssh-rsa private key, or an age identity file",
                )
                .caused_by(e)
            })?;
        return match id {
            ::age::ssh::Identity::Unencrypted(_) => Ok(vec![Box::new(id.with_callbacks(NoPrompt))]),
            ::age::ssh::Identity::Encrypted(_) => Err(Error::input(
                what,
                "the SSH identity is passphrase-protected",
                "use an age identity, or a copy of the key without passphrase kept off disk",
            )),
            ::age::ssh::Identity::Unsupported(_) => Err(Error::input(
                what,
                "unsupported SSH key type for age",
                "age decrypts with ssh-ed25519 and ssh-rsa keys only",
            )),
        };
    }
    let file = ::age::IdentityFile::from_buffer(body.as_bytes()).map_err(|e| {
        Error::input(
            what,
            format!("not an age identity file ({e})"),
            "expected AGE-SECRET-KEY-1... lines as written by age-keygen",
        )
        .caused_by(e)
    })?;
    let ids = file.into_identities().map_err(|e| {
        Error::input(
            what,
            format!("unusable identity ({e})"),
            "expected AGE-SECRET-KEY-1... lines",
        )
        .caused_by(e)
    })?;
    if ids.is_empty() {
        return Err(Error::input(
            what,
            "no identities found",
            "expected AGE-SECRET-KEY-1... lines as written by age-keygen",
        ));
    }
    Ok(ids)
}

#[derive(Clone, Copy)]
struct NoPrompt;

impl ::age::Callbacks for NoPrompt {
    fn display_message(&self, _: &str) {}
    fn confirm(&self, _: &str, _: &str, _: Option<&str>) -> Option<bool> {
        None
    }
    fn request_public_string(&self, _: &str) -> Option<String> {
        None
    }
    fn request_passphrase(&self, _: &str) -> Option<::age::secrecy::SecretString> {
        None
    }
}

/// Whether `bytes` look like an age file (armored or binary).
pub fn is_age_file(bytes: &[u8]) -> bool {
    let trimmed = bytes.trim_ascii_start();
    trimmed.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----")
        || trimmed.starts_with(b"age-encryption.org/v1\n")
}

/// Most recipient stanzas an age header may have. Each stanza can cost the identities a
/// private-key operation (an RSA decryption for `ssh-rsa`), so an untrusted file with thousands
/// is refused before any is tried. sealkey and SOPS files have one per recipient.
pub const MAX_STANZAS: usize = 1024;

/// The lines of a binary age file's header, each with the offset just past it, up to and
/// including the `---` MAC line: one linear pass, shared by unseal and inspect.
pub(crate) fn header_lines(binary: &[u8]) -> impl Iterator<Item = (&[u8], usize)> {
    let mut at = 0usize;
    let mut done = false;
    std::iter::from_fn(move || {
        if done || at >= binary.len() {
            return None;
        }
        let end = binary[at..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(binary.len(), |p| at + p + 1);
        let line = &binary[at..end];
        done = line.starts_with(b"---");
        at = end;
        Some((line, end))
    })
}

/// The length of the binary header (through the `---` MAC line), after checking the stanza
/// count.
fn header_len(binary: &[u8], what: &str) -> Result<usize> {
    let mut stanzas = 0usize;
    for (line, end) in header_lines(binary) {
        if line.starts_with(b"-> ") {
            stanzas += 1;
            if stanzas > MAX_STANZAS {
                return Err(Error::crypto(
                    what,
                    format!("its header has more than {MAX_STANZAS} recipient stanzas"),
                    "sealkey and SOPS write one per recipient: this file was not made for you; re-seal it to fewer recipients",
                ));
            }
        } else if line.starts_with(b"---") {
            return Ok(end);
        }
    }
    // No MAC line: let age report the malformed header.
    Ok(binary.len())
}

/// A reader over the binary age file that hands the whole header to age's parser in its first
/// `read_until`. age re-parses the header from its start after every line it reads
/// (`Header::read_buffered`), which is quadratic in the number of stanzas; given the whole
/// header at once it parses it once.
struct HeaderAtOnce<'a> {
    rest: &'a [u8],
    header_len: usize,
}

impl<'a> HeaderAtOnce<'a> {
    fn new(binary: &'a [u8], header_len: usize) -> Self {
        Self {
            rest: binary,
            header_len,
        }
    }
}

impl std::io::Read for HeaderAtOnce<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.rest.read(buf)?;
        self.header_len = self.header_len.saturating_sub(n);
        Ok(n)
    }
}

impl std::io::BufRead for HeaderAtOnce<'_> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        Ok(self.rest)
    }

    fn consume(&mut self, amt: usize) {
        self.rest = &self.rest[amt..];
        self.header_len = self.header_len.saturating_sub(amt);
    }

    fn read_until(&mut self, byte: u8, buf: &mut Vec<u8>) -> std::io::Result<usize> {
        if self.header_len > 0 {
            let n = self.header_len.min(self.rest.len());
            buf.extend_from_slice(&self.rest[..n]);
            self.consume(n);
            return Ok(n);
        }
        let n = match self.rest.iter().position(|&b| b == byte) {
            Some(p) => p + 1,
            None => self.rest.len(),
        };
        buf.extend_from_slice(&self.rest[..n]);
        self.consume(n);
        Ok(n)
    }
}

/// Decrypts an age file (armored or binary). `what` names the input in errors.
pub fn unseal(ciphertext: &[u8], identities: &[Identity], what: &str) -> Result<SecretBytes> {
    let unreadable = |e: &dyn std::fmt::Display| {
        Error::crypto(
            what,
            format!("not a readable age file ({e})"),
            "pass the file exactly as sealkey or age wrote it",
        )
    };
    let mut binary = Vec::with_capacity(ciphertext.len());
    ::age::armor::ArmoredReader::new(ciphertext.trim_ascii_start())
        .read_to_end(&mut binary)
        .map_err(|e| unreadable(&e))?;
    let header_len = header_len(&binary, what)?;
    let decryptor = ::age::Decryptor::new_buffered(HeaderAtOnce::new(&binary, header_len))
        .map_err(|e| {
            Error::crypto(
                what,
                format!("not a readable age file ({e})"),
                "pass the file exactly as sealkey or age wrote it",
            )
            .caused_by(e)
        })?;
    let mut stream = decryptor
        .decrypt(
            identities
                .iter()
                .map(|i| i.as_ref() as &dyn ::age::Identity),
        )
        .map_err(|e| match e {
            ::age::DecryptError::NoMatchingKeys => Error::crypto(
                what,
                "none of the identities can open this file",
                "use the identity matching one of the recipients it was sealed to",
            ),
            other => Error::crypto(
                what,
                format!("decryption failed ({other})"),
                "the file may be damaged or tampered with",
            ),
        })?;
    let mut plain = Zeroizing::new(Vec::with_capacity(ciphertext.len()));
    stream.read_to_end(&mut plain).map_err(|e| {
        Error::crypto(
            what,
            format!("decryption failed ({e})"),
            "the file may be damaged or tampered with",
        )
        .caused_by(e)
    })?;
    Ok(SecretBytes::from(plain))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> (String, AgeIdentityText) {
        let id = ::age::x25519::Identity::generate();
        let r = id.to_public().to_string();
        use ::age::secrecy::ExposeSecret;
        (
            r,
            AgeIdentityText::new(id.to_string().expose_secret().to_string()),
        )
    }

    #[test]
    fn seal_then_unseal_with_x25519() {
        let (r, id) = identity();
        let sealed = seal_text(b"hello", &parse_recipients(&[r]).unwrap()).unwrap();
        assert!(sealed.starts_with("-----BEGIN AGE ENCRYPTED FILE-----\n"));
        assert!(sealed.ends_with("-----END AGE ENCRYPTED FILE-----\n"));
        let ids = parse_identities(&id, "id").unwrap();
        assert_eq!(
            unseal(sealed.as_bytes(), &ids, "in")
                .unwrap()
                .expose_secret(),
            b"hello"
        );
    }

    #[test]
    fn wrong_identity_is_a_crypto_error() {
        let (r, _) = identity();
        let (_, other) = identity();
        let sealed = seal_text(b"x", &parse_recipients(&[r]).unwrap()).unwrap();
        let err = unseal(
            sealed.as_bytes(),
            &parse_identities(&other, "id").unwrap(),
            "in",
        )
        .unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("none of the identities"), "{err}");
    }

    #[test]
    fn malformed_recipients_name_the_input() {
        for (bad, needle) in [
            ("age1qqqqqqqq", "not a valid age recipient"),
            ("ssh-ed25519 AAAAnotbase64", "not a valid SSH public key"),
            ("age1pq1abc", "post-quantum"),
            (
                "/nonexistent/recipients.txt",
                "neither a recipient nor a readable",
            ),
        ] {
            let err = parse_recipients(&[bad.to_string()]).err().expect(bad);
            assert_eq!(err.exit_code(), 2);
            assert!(err.to_string().contains(needle), "{bad}: {err}");
        }
    }

    /// Regression: X25519 recipients whose bech32 data happens to start with "pq" or "se" (about 1
    /// in 500 keys) were refused as post-quantum/plugin recipients.
    #[test]
    fn x25519_recipients_starting_with_pq_or_se_are_accepted() {
        let mut found = 0;
        for _ in 0..200_000 {
            let r = ::age::x25519::Identity::generate().to_public().to_string();
            if r.starts_with("age1pq") || r.starts_with("age1se") {
                parse_recipients(&[r]).expect("a valid X25519 recipient");
                found += 1;
                if found == 3 {
                    break;
                }
            }
        }
        assert_eq!(
            found, 3,
            "no such recipient generated: the test proved nothing"
        );
    }

    #[test]
    fn recipients_file_reports_bad_line_number() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.txt");
        let (r, _) = identity();
        std::fs::write(&p, format!("# team\n{r}\n\nnot-a-recipient\n")).unwrap();
        let err = parse_recipients(&[p.display().to_string()]).err().unwrap();
        assert!(err.to_string().contains("r.txt line 4"), "{err}");
        std::fs::write(&p, format!("# team\n{r}\n")).unwrap();
        assert_eq!(
            parse_recipients(&[p.display().to_string()]).unwrap().len(),
            1
        );
    }
}
