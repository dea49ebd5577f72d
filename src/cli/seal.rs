//! `sealkey seal`: seal YAML from stdin.

use super::common::{into_text, read_stdin, SealArgs, OK};
use super::Outcome;
use super::Ui;
use crate::seal;
use anyhow::Result;

/// Seal Kubernetes YAML read from stdin.
///
/// Example: kubectl create secret generic dags --from-file=ssh=KEY --dry-run=client -o yaml \
///            | sealkey seal --seal-to age1... --out dags.yaml.age
#[derive(Debug, clap::Args)]
pub struct SealCmdArgs {
    #[command(flatten)]
    pub seal: SealArgs,
}

pub fn run(mut args: SealCmdArgs, ui: &Ui) -> Result<Outcome> {
    // issue 15: .sops.yaml creation_rules (see cli/sops_config.rs).
    super::common::refuse_shared_paths(&args.seal.named_paths())?;
    let sops_rule = super::sops_config::apply(&mut args.seal, ui)?;
    if args.seal.identity.is_some() && args.seal.update.is_none() {
        return Err(crate::error::Error::input(
            "--identity",
            "it opens the file of --update, which was not given",
            "drop --identity, or add --update FILE",
        )
        .into());
    }
    let method = args.seal.method()?;
    args.seal.check_destination(method, "the unsealed input")?;
    let settings = super::sops_config::finish(args.seal.settings(method, ui)?, &sops_rule);
    let text = into_text(read_stdin("stdin")?, "stdin")?;
    let output = seal::seal_yaml_text(&text, "stdin", &settings)?;
    args.seal.write(&output)?;
    Ok(OK)
}
