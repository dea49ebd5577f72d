//! `.sops.yaml` for `create` and `seal` (issue 15): with SOPS output to a file and no
//! `--seal-to`, the first matching `creation_rules` entry of the nearest `.sops.yaml` gives the
//! recipients and the selection; `--seal-to` overrides it, with a note.

use super::common::SealArgs;
use super::Ui;
use crate::seal::SealMethod;
use anyhow::Result;

/// What the rule decided, for `SopsSettings` after `SealArgs::settings`.
#[derive(Debug, Default)]
pub struct Applied {
    /// The rule's `unencrypted_suffix`, when it has one instead of `encrypted_regex`.
    pub unencrypted_suffix: Option<String>,
}

/// Fills `seal` from `.sops.yaml` when it applies; returns what the settings must add.
pub fn apply(seal: &mut SealArgs, ui: &Ui) -> Result<Applied> {
    let Some(out) = seal.out.clone() else {
        return Ok(Applied::default());
    };
    if !matches!(seal.seal, None | Some(SealMethod::Sops)) || seal.cert.is_some() {
        return Ok(Applied::default());
    }
    // A directory (several objects, one file each): the rule is the one sops would pick for a
    // sealed file in it, matched on the path of such a file.
    let out = match crate::seal::sops::layout::target(&out, 2) {
        crate::seal::sops::layout::Target::Directory(d) => d.join("object.sops.yaml"),
        crate::seal::sops::layout::Target::File(f) => f,
    };
    let mut dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    // A directory sealkey is about to create: its rules are its parent's.
    if !dir.is_dir()
        && dir
            .parent()
            .is_some_and(|p| p.is_dir() || p.as_os_str().is_empty())
    {
        dir = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
    }
    if !dir.is_dir() {
        return Ok(Applied::default());
    }
    let Some(config) = crate::seal::sops_config::find(&dir)? else {
        return Ok(Applied::default());
    };
    let Some(rule) = config.rule_for(&out) else {
        return Ok(Applied::default());
    };
    let at = format!("{} creation_rules[{}]", config.path.display(), rule.index);
    if !seal.seal_to.is_empty() {
        ui.info(&format!(
            "note: --seal-to overrides {at}, which matches {}",
            out.display()
        ));
        return Ok(Applied::default());
    }
    if rule.seal_to().is_empty() {
        return Ok(Applied::default());
    }
    ui.info(&format!(
        "sealing {} as {at} says ({} recipient(s))",
        out.display(),
        rule.seal_to().len()
    ));
    seal.seal = Some(SealMethod::Sops);
    seal.seal_to = rule.seal_to();
    if let Some(re) = &rule.encrypted_regex {
        seal.encrypted_regex = re.clone();
    }
    Ok(Applied {
        unencrypted_suffix: if rule.encrypted_regex.is_none() {
            rule.unencrypted_suffix.clone()
        } else {
            None
        },
    })
}

/// Applies the rule's selection to SOPS settings.
pub fn finish(settings: crate::seal::SealSettings, applied: &Applied) -> crate::seal::SealSettings {
    match (settings, &applied.unencrypted_suffix) {
        (crate::seal::SealSettings::Sops(s), Some(suffix)) => {
            crate::seal::SealSettings::Sops(s.with_unencrypted_suffix(suffix))
        }
        (s, _) => s,
    }
}
