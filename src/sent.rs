//! What this run sent to a remote as a secret (a Secret value, a stored key, a KMS data key) and
//! the credentials it holds (GitHub tokens, the AWS secret access key and session token, SigV4
//! signatures), kept so that no server can show them back: [`crate::http::sanitize_server_text`],
//! the one path for every remote's text (GitHub, AWS, Kubernetes, certificate URLs), redacts any
//! echo of them through [`redact`].
//!
//! An echo may quote a slice (`SecretString[200:]`) in another encoding, so each secret is
//! looked for as raw text, JSON-escaped, URL-encoded, base64 (standard and URL-safe, at all three
//! byte alignments), hex (lower and upper case) and a list of decimal bytes, and any run of [`WINDOW`] characters of one of
//! those is enough: every character of the text covered by such a run is redacted. Whitespace
//! is ignored on both sides (a PEM's line breaks, an echo that re-wraps). The code that builds a
//! request registers what it puts in it, before sending; entries live until the run ends
//! ([`forget_all`], called as the CLI exits), in zeroized buffers.

use base64::Engine as _;
use std::collections::HashSet;
use std::sync::Mutex;
use zeroize::Zeroizing;

/// The shortest run of a secret's encoding that counts as an echo of it (12 bytes of a key as
/// base64, 8 as hex).
pub const WINDOW: usize = 16;

/// Secrets shorter than this are not registered: they would match ordinary text.
pub const MIN_SECRET: usize = 8;

static SENT: Mutex<Vec<Zeroizing<Vec<u8>>>> = Mutex::new(Vec::new());

/// Registers `secret` (sent in a request, or a credential held) for redaction from all server
/// text shown later in this run. Empty and very short values are ignored; repeats are kept once.
pub fn register(secret: &[u8]) {
    if secret.len() < MIN_SECRET {
        return;
    }
    let mut sent = SENT.lock().unwrap_or_else(|e| e.into_inner());
    if !sent.iter().any(|s| s.as_slice() == secret) {
        sent.push(Zeroizing::new(secret.to_vec()));
    }
}

/// Wipes every registered secret (the CLI calls it after the last message is printed).
pub fn forget_all() {
    SENT.lock().unwrap_or_else(|e| e.into_inner()).clear();
}

/// `text` with every echo of a registered secret, or of one of `extra`, replaced by
/// `[redacted]` (see the module documentation for what counts as an echo).
pub fn redact(text: &str, extra: &[&str]) -> String {
    let sent = SENT.lock().unwrap_or_else(|e| e.into_inner());
    let secrets = sent
        .iter()
        .map(|s| s.as_slice())
        .chain(extra.iter().map(|s| s.as_bytes()))
        .filter(|s| s.len() >= MIN_SECRET);
    let mut forms: Vec<Zeroizing<Vec<u8>>> = Vec::new();
    for secret in secrets {
        forms.extend(encodings(secret));
    }
    drop(sent);
    redact_forms(text, &forms)
}

/// Every encoding of `secret` an echo might use, whitespace removed.
fn encodings(secret: &[u8]) -> Vec<Zeroizing<Vec<u8>>> {
    let engines = [
        &base64::engine::general_purpose::STANDARD_NO_PAD,
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ];
    let mut out: Vec<Zeroizing<String>> = Vec::new();
    if let Ok(text) = std::str::from_utf8(secret) {
        out.push(Zeroizing::new(text.to_string()));
        out.push(Zeroizing::new(
            serde_json::to_string(text).unwrap_or_default(),
        ));
        out.push(Zeroizing::new(
            url::form_urlencoded::byte_serialize(secret).collect(),
        ));
    }
    // A slice starting at any byte is a slice of one of these three.
    for skip in 0..3.min(secret.len()) {
        for e in engines {
            out.push(Zeroizing::new(e.encode(&secret[skip..])));
        }
    }
    out.push(Zeroizing::new(hex::encode(secret)));
    out.push(Zeroizing::new(hex::encode_upper(secret)));
    // A byte array as a JSON or debug list (`[12, 34, ...]`), as a blob might be echoed.
    let decimal: Vec<String> = secret.iter().map(u8::to_string).collect();
    out.push(Zeroizing::new(decimal.join(",")));
    out.into_iter()
        .map(|f| Zeroizing::new(f.bytes().filter(|b| !b.is_ascii_whitespace()).collect()))
        .collect()
}

fn redact_forms(text: &str, forms: &[Zeroizing<Vec<u8>>]) -> String {
    if forms.is_empty() {
        return text.to_string();
    }
    // The text without whitespace, each byte with its offset in `text`.
    let (bytes, offsets): (Vec<u8>, Vec<usize>) = text
        .bytes()
        .enumerate()
        .filter(|(_, b)| !b.is_ascii_whitespace())
        .map(|(i, b)| (b, i))
        .unzip();
    let bytes = Zeroizing::new(bytes);
    let mut windows: HashSet<&[u8]> = HashSet::new();
    let mut short: Vec<&[u8]> = Vec::new();
    for form in forms {
        if form.len() < WINDOW {
            short.push(form.as_slice());
        } else {
            windows.extend(form.windows(WINDOW));
        }
    }
    let mut hit = vec![false; bytes.len()];
    for (i, w) in bytes.windows(WINDOW).enumerate() {
        if windows.contains(w) {
            hit[i..i + WINDOW].iter_mut().for_each(|h| *h = true);
        }
    }
    for s in short.iter().filter(|s| !s.is_empty()) {
        for (i, w) in bytes.windows(s.len()).enumerate() {
            if w == *s {
                hit[i..i + s.len()].iter_mut().for_each(|h| *h = true);
            }
        }
    }
    if !hit.contains(&true) {
        return text.to_string();
    }
    // Runs of hits (adjacent once whitespace is ignored) become one `[redacted]` each, widened
    // to character boundaries.
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    let mut i = 0;
    while i < hit.len() {
        if !hit[i] {
            i += 1;
            continue;
        }
        let mut j = i;
        while j + 1 < hit.len() && hit[j + 1] {
            j += 1;
        }
        let mut start = offsets[i];
        while !text.is_char_boundary(start) {
            start -= 1;
        }
        let mut end = offsets[j] + 1;
        while !text.is_char_boundary(end) {
            end += 1;
        }
        if start >= pos {
            out.push_str(&text[pos..start]);
            out.push_str("[redacted]");
            pos = end;
        } else if end > pos {
            pos = end;
        }
        i = j + 1;
    }
    out.push_str(&text[pos..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forms(secret: &[u8]) -> Vec<Zeroizing<Vec<u8>>> {
        encodings(secret)
    }

    /// A deploy key made for the test, its OpenSSH PEM text.
    fn pem() -> String {
        let key = crate::keygen::DeployKey::generate(crate::keygen::KeyType::Ed25519, "t").unwrap();
        key.private_pem().unwrap().expose_secret().to_string()
    }

    #[test]
    fn any_long_enough_slice_of_a_secret_in_any_encoding_is_redacted() {
        let pem = pem();
        let f = forms(pem.as_bytes());
        let b64 = base64::engine::general_purpose::STANDARD;
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        for from in [0, 1, 2, 37, 100, 141] {
            let slice = &pem.as_bytes()[from..];
            for echo in [
                String::from_utf8_lossy(slice).into_owned(),
                String::from_utf8_lossy(slice).replace('\n', " "),
                serde_json::to_string(&String::from_utf8_lossy(slice)).unwrap(),
                b64.encode(slice),
                url.encode(slice),
                hex::encode(slice),
                hex::encode_upper(slice),
                url::form_urlencoded::byte_serialize(slice).collect(),
            ] {
                let shown = redact_forms(&format!("Invalid value: {echo} (end)"), &f);
                // A JSON quote or base64 padding may be left beside the redaction.
                assert!(shown.starts_with("Invalid value: "), "{shown}");
                assert!(shown.contains("[redacted]"), "{shown}");
                assert!(shown.ends_with(" (end)"), "{shown}");
                let rest = shown.replace("[redacted]", "");
                for w in pem.as_bytes().windows(WINDOW) {
                    let w = String::from_utf8_lossy(w);
                    assert!(!rest.contains(w.as_ref()), "{w:?} left in {shown}");
                }
            }
        }
    }

    #[test]
    fn binary_secrets_are_caught_as_base64_and_hex_and_other_text_is_kept() {
        let key: Vec<u8> = (0u8..32).map(|b| b.wrapping_mul(37) ^ 0xa5).collect();
        let f = forms(&key);
        let b64 = base64::engine::general_purpose::STANDARD;
        for echo in [
            b64.encode(&key),
            b64.encode(&key[5..]),
            hex::encode(&key[9..]),
        ] {
            let shown = redact_forms(&format!("Value '{echo}' at 'plaintext' failed"), &f);
            let shown = shown.replace('=', "");
            assert_eq!(shown, "Value '[redacted]' at 'plaintext' failed");
        }
        let plain = "Secrets Manager can't find the specified secret dev/airflow-ssh.";
        assert_eq!(redact_forms(plain, &f), plain);
    }

    #[test]
    fn registered_secrets_and_extras_are_redacted_and_short_ones_ignored() {
        let canary = "registered-canary-0123456789-sent";
        register(canary.as_bytes());
        register(b"short");
        let shown = redact(
            &format!("echo {canary} and extra-credential-xyz-42 and short"),
            &["extra-credential-xyz-42"],
        );
        assert_eq!(shown, "echo [redacted] and [redacted] and short");
        assert_eq!(redact("a\u{e9}\u{e9} plain", &[]), "a\u{e9}\u{e9} plain");
    }
}
