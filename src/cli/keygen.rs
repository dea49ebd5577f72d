//! `sealkey keygen`: a key's public half and fingerprint; its private half only sealed or piped.

use super::common::{check_plaintext_stdout, write_stdout, OK};
use super::create::KeyArgs;
use super::Outcome;
use super::Ui;
use crate::error::Error;
use crate::keygen::DeployKey;
use crate::repo::RepoRef;
use crate::seal::{self, SealMethod};
use anyhow::Result;

/// Generate a deploy key in memory.
///
/// Prints the public key and its SHA256 fingerprint. With --seal-to, also the private key as an
/// armored age file; with --seal none, the plaintext private key, to a pipe only.
#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    #[command(flatten)]
    pub key: KeyArgs,
    /// Repository the key is for (sets the default comment sealkey:OWNER/REPO).
    #[arg(long, value_name = "OWNER/REPO")]
    pub repo: Option<String>,
    /// Seal the private key to these age recipients (age1..., ssh public keys, or files). Repeatable.
    #[arg(long = "seal-to", value_name = "RECIPIENT|FILE")]
    pub seal_to: Vec<String>,
    /// How the private key is output: `age` (the default with --seal-to) or `none` (plaintext,
    /// to a pipe only). A lone key is no manifest: for SOPS or Sealed Secrets use `sealkey create`.
    #[arg(long, value_enum)]
    pub seal: Option<KeygenSeal>,
    /// Allow `--seal none` output to a terminal.
    #[arg(long)]
    pub force_plaintext_to_tty: bool,
    /// Output format (`--format`, as in `audit` and `inspect`; `-o`/`--output` also work).
    #[arg(
        long = "format",
        short = 'o',
        visible_alias = "output",
        value_name = "FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub output: KeyOutput,
}

/// What keygen can do with the private key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KeygenSeal {
    /// An armored age file to the --seal-to recipients.
    Age,
    /// Plaintext, to a pipe only.
    None,
}

/// keygen's output format.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum KeyOutput {
    /// Public key, fingerprint, then the sealed private key, one after the other.
    Text,
    /// One JSON object.
    Json,
}

pub fn run(args: KeygenArgs, ui: &Ui) -> Result<Outcome> {
    let comment = match (&args.key.comment, &args.repo) {
        (Some(c), _) => c.clone(),
        (None, Some(r)) => format!("sealkey:{}", RepoRef::parse(r)?.slug()),
        (None, None) => "sealkey".to_string(),
    };
    let method = match (
        args.seal.map(|m| match m {
            KeygenSeal::Age => SealMethod::Age,
            KeygenSeal::None => SealMethod::None,
        }),
        args.seal_to.is_empty(),
    ) {
        (Some(SealMethod::None), false) => {
            return Err(Error::input(
                "--seal none --seal-to",
                "recipients given but sealing is off",
                "drop --seal none",
            )
            .into())
        }
        (Some(m), _) => Some(m),
        (None, false) => Some(SealMethod::Age),
        (None, true) => None,
    };
    let recipients = match method {
        Some(SealMethod::Age) => Some(seal::age::parse_recipients(&args.seal_to)?),
        Some(SealMethod::None) => {
            if matches!(args.output, KeyOutput::Json) {
                return Err(Error::input(
                    "--seal none --output json",
                    "plaintext keys are not put in JSON",
                    "use --output text with --seal none, or seal it",
                )
                .into());
            }
            check_plaintext_stdout("the unsealed private key", args.force_plaintext_to_tty)?;
            None
        }
        Some(m @ (SealMethod::Sops | SealMethod::SealedSecrets)) => {
            return Err(Error::input(
                format!("--seal {}", m.as_str()),
                "keygen seals the bare private key with age only",
                format!(
                    "use `sealkey create --seal {}` for manifests, or --seal age here",
                    m.as_str()
                ),
            )
            .into())
        }
        None => None,
    };
    let key = DeployKey::generate(args.key.key_type, &comment)?;
    ui.detail(&format!(
        "generated an {} key in memory: {}",
        key.key_type().as_str(),
        key.fingerprint()
    ));
    let sealed = match &recipients {
        Some(r) => Some({
            ui.detail(&format!(
                "sealing the private key to {} age recipient(s)",
                r.len()
            ));
            seal::age::seal_text(key.private_pem()?.expose_secret().as_bytes(), r)?
        }),
        None => None,
    };
    match args.output {
        KeyOutput::Json => {
            let mut v = serde_json::json!({
                "key_type": key.key_type(),
                "public_key": key.public_openssh(),
                "fingerprint": key.fingerprint(),
                "comment": key.comment(),
            });
            if let Some(s) = &sealed {
                v["sealed_private_key"] = serde_json::json!(s);
            }
            write_stdout(format!("{}\n", serde_json::to_string_pretty(&v)?).as_bytes())?;
        }
        KeyOutput::Text => {
            let mut text = format!("{}\n{}\n", key.public_openssh(), key.fingerprint());
            if let Some(s) = &sealed {
                text.push_str(s);
            }
            write_stdout(text.as_bytes())?;
            if method == Some(SealMethod::None) {
                write_stdout(key.private_pem()?.expose_secret().as_bytes())?;
            }
        }
    }
    Ok(OK)
}
