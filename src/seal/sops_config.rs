//! `.sops.yaml` as sops reads it: the nearest one in the output file's directory or above (not
//! past the enclosing repository's root or the user's home, and not above the directory itself
//! when neither encloses it), its `creation_rules` tried in order, the first whose
//! `path_regex` matches the file's path relative to the `.sops.yaml` directory (a rule without
//! one matches every file) decides the recipients (`age`, `kms`, or a single `key_groups` entry)
//! and the selection (`encrypted_regex`, `unencrypted_suffix`).

use crate::error::{Error, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// One creation rule, as written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CreationRule {
    /// Its position in `creation_rules` (0-based).
    pub index: usize,
    /// `path_regex`, if any.
    pub path_regex: Option<String>,
    /// age recipients.
    pub age: Vec<String>,
    /// KMS keys (`ARN` or `ARN+ROLE`).
    pub kms: Vec<String>,
    /// `encrypted_regex`.
    pub encrypted_regex: Option<String>,
    /// `unencrypted_suffix`.
    pub unencrypted_suffix: Option<String>,
}

impl CreationRule {
    /// The recipients as `--seal-to` values.
    pub fn seal_to(&self) -> Vec<String> {
        self.kms.iter().chain(&self.age).cloned().collect()
    }
}

/// A parsed `.sops.yaml`.
#[derive(Clone, Debug)]
pub struct SopsConfig {
    /// The file.
    pub path: PathBuf,
    /// Its rules, in order.
    pub rules: Vec<CreationRule>,
}

/// The nearest `.sops.yaml` for a file in `dir`, never above the stop point (see
/// [`find_within`]), with `$HOME` as the user's home.
pub fn find(dir: &Path) -> Result<Option<SopsConfig>> {
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .and_then(|h| std::fs::canonicalize(h).ok());
    find_within(dir, home.as_deref())
}

/// The nearest `.sops.yaml` for a file in `dir`: `dir`, then its parents up to the stop point,
/// the nearest directory that holds `.git` (the repository root) or is `home`. With neither
/// above `dir`, only `dir` itself is looked at: a `.sops.yaml` anyone could plant higher up
/// (`/tmp/.sops.yaml` for a file under `/tmp`) never chooses recipients.
pub fn find_within(dir: &Path, home: Option<&Path>) -> Result<Option<SopsConfig>> {
    let start = std::fs::canonicalize(dir).map_err(|e| Error::file("resolve", dir, e))?;
    let stop = start
        .ancestors()
        .position(|d| d.join(".git").exists() || Some(d) == home)
        .unwrap_or(0);
    for d in start.ancestors().take(stop + 1) {
        let candidate = d.join(".sops.yaml");
        if candidate.is_file() {
            let bytes = crate::input_file::read_named(
                &candidate,
                candidate.display().to_string(),
                crate::input_file::LIST_MAX,
            )?;
            let text = String::from_utf8_lossy(&bytes);
            return parse(&text, &candidate).map(Some);
        }
    }
    Ok(None)
}

fn list(v: &Value, what: &str) -> Result<Vec<String>> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()),
        Value::Array(a) => a
            .iter()
            .map(|x| {
                x.as_str().map(|s| s.trim().to_string()).ok_or_else(|| {
                    Error::input(
                        what,
                        "a list entry is not a string",
                        "write recipients as strings",
                    )
                })
            })
            .collect(),
        _ => Err(Error::input(
            what,
            "not a string or list",
            "write recipients as a comma-separated string or a list",
        )),
    }
}

/// Parses `.sops.yaml` text; `path` names it in errors.
pub fn parse(text: &str, path: &Path) -> Result<SopsConfig> {
    let what = path.display().to_string();
    let docs = crate::yaml::parse_stream(text, &what)?;
    let doc = docs.into_iter().next().unwrap_or(Value::Null);
    let mut rules = Vec::new();
    for (index, r) in doc["creation_rules"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = format!("{what} creation_rules[{index}]");
        for unsupported in [
            "pgp",
            "gcp_kms",
            "azure_keyvault",
            "hc_vault_transit_uri",
            "shamir_threshold",
            "encrypted_comment_regex",
            "unencrypted_comment_regex",
            "unencrypted_regex",
            "encrypted_suffix",
        ] {
            if !r[unsupported].is_null() {
                return Err(Error::input(&at, format!("`{unsupported}` is not supported by sealkey"), crate::message!("use age/kms recipients with encrypted_regex or unencrypted_suffix, or pass {} to override the rule", crate::error::Setting::SealTo)));
            }
        }
        let mut rule = CreationRule {
            index,
            path_regex: r["path_regex"].as_str().map(String::from),
            age: list(&r["age"], &format!("{at}.age"))?,
            kms: list(&r["kms"], &format!("{at}.kms"))?,
            encrypted_regex: r["encrypted_regex"].as_str().map(String::from),
            unencrypted_suffix: r["unencrypted_suffix"].as_str().map(String::from),
        };
        if let Some(groups) = r["key_groups"].as_array() {
            if groups.len() > 1 {
                return Err(Error::input(
                    &at,
                    "several key_groups (Shamir secret sharing) are not supported",
                    crate::message!(
                        "use one key group, or pass {}",
                        crate::error::Setting::SealTo
                    ),
                ));
            }
            for g in groups {
                rule.age
                    .extend(list(&g["age"], &format!("{at}.key_groups[0].age"))?);
                for k in g["kms"].as_array().into_iter().flatten() {
                    let arn = k["arn"].as_str().unwrap_or_default();
                    if !k["context"].is_null()
                        || !k["aws_profile"].as_str().unwrap_or_default().is_empty()
                    {
                        return Err(Error::input(&at, "kms entries with context or aws_profile are not supported in .sops.yaml yet", crate::message!("drop them from the rule, or pass {}", crate::error::Setting::SealTo)));
                    }
                    rule.kms.push(match k["role"].as_str() {
                        Some(role) if !role.is_empty() => format!("{arn}+{role}"),
                        _ => arn.to_string(),
                    });
                }
                if !g["pgp"].is_null() {
                    return Err(Error::input(
                        &at,
                        "pgp keys are not supported by sealkey",
                        "use age or kms recipients",
                    ));
                }
            }
        }
        if let Some(re) = &rule.path_regex {
            regex::Regex::new(re).map_err(|e| {
                Error::input(
                    format!("{at}.path_regex"),
                    format!("not a regular expression ({e})"),
                    "fix the rule",
                )
            })?;
        }
        rules.push(rule);
    }
    Ok(SopsConfig {
        path: path.to_path_buf(),
        rules,
    })
}

impl SopsConfig {
    /// The first rule matching `file` (its path relative to the `.sops.yaml` directory).
    pub fn rule_for(&self, file: &Path) -> Option<&CreationRule> {
        let dir = self.path.parent().unwrap_or(Path::new("/"));
        let parent = file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = file.file_name().unwrap_or_default();
        let file = std::fs::canonicalize(parent)
            .map(|p| p.join(name))
            // A directory not created yet (sealkey's layout for several objects): its parent.
            .or_else(|e| match (parent.parent(), parent.file_name()) {
                (Some(pp), Some(last)) => std::fs::canonicalize(if pp.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    pp
                })
                .map(|p| p.join(last).join(name)),
                _ => Err(e),
            })
            .unwrap_or_else(|_| file.to_path_buf());
        let rel = file
            .strip_prefix(dir)
            .unwrap_or(&file)
            .to_string_lossy()
            .into_owned();
        self.rules.iter().find(|r| match &r.path_regex {
            None => true,
            Some(re) => regex::Regex::new(re).is_ok_and(|re| re.is_match(&rel)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_walk_stops_at_the_repository_root_or_home_and_never_goes_above() {
        // Was: with no `.git` on the way the walk went up to `/`, so a `.sops.yaml` planted in
        // /tmp chose the recipients of a file written under /tmp.
        let tmp = tempfile::tempdir().unwrap();
        let t = std::fs::canonicalize(tmp.path()).unwrap();
        let rules = "creation_rules:\n  - age: age1planted\n";
        std::fs::write(t.join(".sops.yaml"), rules).unwrap();
        let deep = t.join("a/b");
        std::fs::create_dir_all(&deep).unwrap();
        let elsewhere = t.join("home");
        // Neither a repository nor home above: only the file's own directory counts.
        assert!(find_within(&deep, Some(&elsewhere)).unwrap().is_none());
        assert!(find_within(&deep, None).unwrap().is_none());
        std::fs::write(deep.join(".sops.yaml"), rules).unwrap();
        assert_eq!(
            find_within(&deep, None).unwrap().unwrap().path,
            deep.join(".sops.yaml")
        );
        std::fs::remove_file(deep.join(".sops.yaml")).unwrap();
        // Under home: up to home, not above it.
        assert!(find_within(&deep, Some(&t.join("a"))).unwrap().is_none());
        std::fs::write(t.join("a/.sops.yaml"), rules).unwrap();
        assert_eq!(
            find_within(&deep, Some(&t.join("a")))
                .unwrap()
                .unwrap()
                .path,
            t.join("a/.sops.yaml")
        );
        std::fs::remove_file(t.join("a/.sops.yaml")).unwrap();
        // In a repository: up to its root, not above it.
        std::fs::create_dir(t.join("a/.git")).unwrap();
        assert!(find_within(&deep, None).unwrap().is_none());
        assert!(find_within(&deep, Some(&t)).unwrap().is_none());
    }

    #[test]
    fn the_first_matching_rule_wins_and_key_groups_flatten() {
        let text = r#"
creation_rules:
  - path_regex: ^prod/.*\.yaml$
    kms: "arn:aws:kms:eu-west-1:123456789012:key/a, arn:aws:kms:eu-west-1:123456789012:alias/b+arn:aws:iam::123456789012:role/sops"
    encrypted_regex: ^(data|stringData)$
  - path_regex: \.yaml$
    key_groups:
      - age: [age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p]
        kms:
          - arn: arn:aws:kms:eu-west-1:123456789012:key/c
    unencrypted_suffix: _clear
"#;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(".sops.yaml");
        let c = parse(text, &p).unwrap();
        assert_eq!(c.rules[0].kms.len(), 2);
        assert_eq!(c.rules[1].seal_to().len(), 2);
        std::fs::create_dir(dir.path().join("prod")).unwrap();
        assert_eq!(
            c.rule_for(&dir.path().join("prod/x.yaml")).unwrap().index,
            0
        );
        assert_eq!(c.rule_for(&dir.path().join("dev.yaml")).unwrap().index, 1);
        assert!(c.rule_for(&dir.path().join("x.json")).is_none());
        let bad = "creation_rules:\n  - key_groups: [{age: [a]}, {age: [b]}]\n";
        assert!(parse(bad, &p).is_err());
        assert!(parse("creation_rules:\n  - pgp: ABC\n", &p).is_err());
    }
}
