//! `OWNER/REPO` references and the git URLs derived from them.

use crate::error::{Error, Result, Setting};
use crate::message;

/// A GitHub repository, `OWNER/REPO`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RepoRef {
    /// The user or organisation.
    pub owner: String,
    /// The repository name.
    pub name: String,
}

impl RepoRef {
    /// Parses `OWNER/REPO` (GitHub's own character rules: letters, digits, `-`, `_`, `.`).
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |problem: &str| {
            Error::input(
                message!("{} {}", Setting::Repo, s.to_string()),
                problem.to_string(),
                message!(
                    "give the repository as OWNER/REPO, e.g. {} acme/dags",
                    Setting::Repo
                ),
            )
        };
        let (owner, name) = s
            .split_once('/')
            .ok_or_else(|| bad("not of the form OWNER/REPO"))?;
        let name = name.strip_suffix(".git").unwrap_or(name);
        let ok_owner = !owner.is_empty()
            && owner.len() <= 39
            && owner
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && !owner.starts_with('-');
        let ok_name = !name.is_empty()
            && name.len() <= 100
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            && name != "."
            && name != "..";
        if !ok_owner || !ok_name {
            return Err(bad(
                "not of the form OWNER/REPO (letters, digits, '-', '_', '.' only)",
            ));
        }
        Ok(Self {
            owner: owner.to_string(),
            name: name.to_string(),
        })
    }

    /// `OWNER/REPO`.
    pub fn slug(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }

    /// The scp-style SSH URL on `host`: `git@HOST:OWNER/REPO.git`.
    pub fn ssh_url(&self, host: &str) -> String {
        format!("git@{host}:{}/{}.git", self.owner, self.name)
    }

    /// A name usable in Kubernetes object names (DNS-1123 label): lowercase, `.`/`_` to `-`.
    pub fn k8s_name(&self) -> String {
        let s: String = self
            .name
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let s = s.trim_matches('-').to_string();
        if s.is_empty() {
            "repo".into()
        } else {
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_owner_slash_repo() {
        let r = RepoRef::parse("acme/dags.git").unwrap();
        assert_eq!(r.slug(), "acme/dags");
        assert_eq!(r.ssh_url("github.com"), "git@github.com:acme/dags.git");
        assert_eq!(
            RepoRef::parse("Acme-1/My_Repo.v2").unwrap().k8s_name(),
            "my-repo-v2"
        );
    }

    #[test]
    fn rejects_other_shapes_with_a_hint() {
        for bad in [
            "acme",
            "acme/",
            "/dags",
            "a/b/c",
            "acme/da gs",
            "https://github.com/acme/dags",
            "-x/y",
        ] {
            let err = RepoRef::parse(bad).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad}");
            assert!(err.to_string().contains("OWNER/REPO"), "{err}");
        }
    }
}
