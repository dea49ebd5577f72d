//! `sealkey unseal`: open sealed output with an identity; plaintext only to a pipe.

use super::common::{check_plaintext_stdout, into_text, read_input, write_stdout, OK};
use super::Outcome;
use super::Ui;
use crate::error::Error;
use crate::seal;
use crate::secret::AgeIdentityText;
use anyhow::Result;
use std::io::IsTerminal;
use std::path::PathBuf;

/// Decrypt an age file (sealkey or the age CLI) or SOPS YAML (sealkey or sops, MAC verified).
///
/// The identity comes from --identity FILE (age identity lines or an ssh private key), or from a
/// no-echo prompt when stdin is a terminal. Plaintext goes only to a pipe.
#[derive(Debug, clap::Args)]
pub struct UnsealArgs {
    /// Sealed input (default: stdin).
    #[arg(value_name = "INPUT")]
    pub input: Option<PathBuf>,
    /// Identity file: AGE-SECRET-KEY-1... lines, or a passphrase-less ssh-ed25519/ssh-rsa key
    /// (for SOPS files: the key Flux's sops-age Secret holds).
    #[arg(long, short = 'i', value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// Allow plaintext output to a terminal.
    #[arg(long)]
    pub force_plaintext_to_tty: bool,
    /// Also print the documents of a SOPS file that have no `sops` block (objects with nothing
    /// secret, such as the HelmRelease of `create --emit helmrelease`), in their places and as
    /// written, the way Flux applies them. No MAC authenticates them; without this flag they
    /// are left out. Either way stderr names them.
    #[arg(long)]
    pub with_plain: bool,
}

pub fn run(args: UnsealArgs, ui: &Ui) -> Result<Outcome> {
    check_plaintext_stdout("the unsealed plaintext", args.force_plaintext_to_tty)?;
    // issue 15: a SOPS file with `sops.kms` entries opens through AWS KMS without --identity.
    if args.identity.is_none() {
        if let Some(code) = unseal_through_kms(&args, ui)? {
            return Ok(code);
        }
    }
    let (identity_text, identity_name) = match &args.identity {
        Some(path) => super::common::identity_text_from_file(path)?,
        None if args.input.is_some() && std::io::stdin().is_terminal() => {
            let typed =
                rpassword::prompt_password("age identity (AGE-SECRET-KEY-1..., not echoed): ")
                    .map_err(|e| Error::file("read identity from", "the terminal", e))?;
            (
                AgeIdentityText::new(typed),
                "the identity typed at the prompt".into(),
            )
        }
        None => return Err(Error::input(
            "--identity",
            "no identity given",
            "pass --identity FILE, or give INPUT as a file and run on a terminal to be prompted",
        )
        .into()),
    };
    let identities = seal::age::parse_identities(&identity_text, &identity_name)?;
    ui.detail(&format!(
        "loaded {} identit{} from {identity_name}",
        identities.len(),
        if identities.len() == 1 { "y" } else { "ies" }
    ));
    let (input, what) = read_input(args.input.as_deref())?;
    if seal::age::is_age_file(&input) {
        ui.detail(&format!("{what}: an age file"));
        let plain = seal::age::unseal(&input, &identities, &what)?;
        write_stdout(plain.expose_secret())?;
        return Ok(OK);
    }
    if seal::sops::looks_like_sops(&input) {
        ui.detail(&format!("{what}: SOPS YAML (MAC checked)"));
        let text = into_text(input, &what)?;
        let plain = if args.with_plain {
            seal::sops::unseal_with_plain(text.expose_secret(), &what, &identities, None)?
        } else {
            seal::sops::unseal(text.expose_secret(), &what, &identities)?
        };
        warn_plain_documents(text.expose_secret(), &what, args.with_plain, ui);
        write_stdout(plain.expose_secret().as_bytes())?;
        return Ok(OK);
    }
    Err(Error::input(
        what,
        "neither an age file nor SOPS YAML",
        "pass output of `sealkey ... --seal age`, `--seal sops`, `age -e` or `sops -e`",
    )
    .into())
}

/// `unseal` of a SOPS file whose data keys are sealed to AWS KMS, when no identity is given:
/// `None` when the input is not such a file (then the identity is asked for as usual).
fn unseal_through_kms(args: &UnsealArgs, ui: &Ui) -> Result<Option<Outcome>> {
    let Some(path) = &args.input else {
        return Ok(None);
    };
    let (bytes, _) = super::common::read_input(Some(path))?;
    if !seal::sops::looks_like_sops(&bytes) {
        return Ok(None);
    }
    let what = path.display().to_string();
    let text = into_text(bytes, &what)?;
    if !seal::sops::has_kms_entries(text.expose_secret()) {
        return Ok(None);
    }
    ui.detail(&format!(
        "{what}: SOPS YAML with AWS KMS entries (MAC checked)"
    ));
    let service = seal::kms::KmsService::connect(&crate::aws::AwsSettings::default())?;
    let plain = if args.with_plain {
        seal::sops::unseal_with_plain(text.expose_secret(), &what, &[], Some(&service))?
    } else {
        seal::sops::unseal_with_kms(text.expose_secret(), &what, &[], Some(&service))?
    };
    warn_plain_documents(text.expose_secret(), &what, args.with_plain, ui);
    ui.detail(&format!("{} KMS call(s)", service.calls()));
    write_stdout(plain.expose_secret().as_bytes())?;
    Ok(Some(OK))
}

/// Documents written without a `sops` block (nothing secret in them): say that no MAC vouches
/// for them, and whether they were printed.
fn warn_plain_documents(text: &str, what: &str, printed: bool, ui: &Ui) {
    for label in seal::sops::plain_documents(text, what) {
        let how = if printed {
            "printed as written"
        } else {
            "left out (--with-plain prints it as written)"
        };
        ui.warn(&format!(
            "{what} {label}: no sops block, so not authenticated, {how}; it holds nothing the file's rule encrypts and Flux applies it as written: review it in the git diff"
        ));
    }
}
