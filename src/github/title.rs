//! Deploy key titles: `sealkey CONTEXT/NAMESPACE/SECRET YYYY-MM-DD`. Built and read here only, so
//! `create --register`, `rotate`, `register` and the hygiene checks agree on one format.
//!
//! The slot `CONTEXT/NAMESPACE/SECRET` keeps keys of different clusters on one repository apart
//! (fluxcd/flux2#964); rotation finds its own keys by it.

/// The title for the key of Secret `namespace/secret` in cluster `context`, registered on `date`.
/// An EKS context (an ARN) is titled by its cluster name: the ARN would put the AWS account id
/// on GitHub.
pub fn key_title(context: &str, namespace: &str, secret: &str, date: jiff::civil::Date) -> String {
    let cluster = cluster_name(context);
    format!("sealkey {cluster}/{namespace}/{secret} {date}")
}

/// The cluster's name in a kubeconfig context: `NAME` of an EKS ARN
/// (`arn:PARTITION:eks:REGION:ACCOUNT:cluster/NAME`, what `aws eks update-kubeconfig` names its
/// context), else the context itself.
pub fn cluster_name(context: &str) -> &str {
    let mut parts = context.splitn(6, ':');
    match (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.nth(2).and_then(|r| r.strip_prefix("cluster/")),
    ) {
        (Some("arn"), Some(_), Some("eks"), Some(name)) if !name.is_empty() => name,
        _ => context,
    }
}

/// [`key_title`] for a moment (its UTC date).
pub fn key_title_at(context: &str, namespace: &str, secret: &str, at: jiff::Timestamp) -> String {
    key_title(
        context,
        namespace,
        secret,
        at.to_zoned(jiff::tz::TimeZone::UTC).date(),
    )
}

/// The title `sealkey register` gives a public key it was handed: `sealkey LABEL YYYY-MM-DD`,
/// where LABEL is the key's comment or the repository. It has no slot of a Secret.
pub fn label_title(label: &str, date: jiff::civil::Date) -> String {
    format!("sealkey {label} {date}")
}

/// Whether `title` marks a key registered for Secret `namespace/secret` in cluster `context`.
/// A key titled before with the whole EKS ARN still matches its cluster name.
pub fn title_is_for(title: &str, context: &str, namespace: &str, secret: &str) -> bool {
    slot_cluster(title, namespace, secret).is_some_and(|c| cluster_name(c) == cluster_name(context))
}

/// The cluster part of a title whose slot is `CLUSTER/NAMESPACE/SECRET` for this Secret, whatever
/// the cluster: `None` for titles of other Secrets or no sealkey title. Lets `rotate --finish`
/// name the cluster a teammate's context titled the keys with.
pub fn slot_cluster<'t>(title: &'t str, namespace: &str, secret: &str) -> Option<&'t str> {
    let slot = sealkey_slot(title)?;
    let mut parts = slot.rsplitn(3, '/');
    let (s, n, c) = (parts.next()?, parts.next()?, parts.next()?);
    (s == secret && n == namespace && !c.is_empty()).then_some(c)
}

/// The `CONTEXT/NAMESPACE/SECRET` (or LABEL) of a sealkey title; `None` for other titles.
pub fn sealkey_slot(title: &str) -> Option<&str> {
    let rest = title.strip_prefix("sealkey ")?;
    Some(rest.split_whitespace().next().unwrap_or(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_name_cluster_namespace_and_secret_and_match_only_their_own_secret() {
        let d = jiff::civil::date(2026, 11, 26);
        let t = key_title("prod-eu", "airflow", "airflow-ssh-secret", d);
        assert_eq!(t, "sealkey prod-eu/airflow/airflow-ssh-secret 2026-11-26");
        assert!(title_is_for(&t, "prod-eu", "airflow", "airflow-ssh-secret"));
        assert!(!title_is_for(&t, "prod-eu", "airflow", "airflow-ssh"));
        assert!(!title_is_for(&t, "prod", "airflow", "airflow-ssh-secret"));
        assert!(!title_is_for(
            "sealkey prod-eu/airflow/airflow-ssh-secret-2 2026-11-26",
            "prod-eu",
            "airflow",
            "airflow-ssh-secret"
        ));
        assert!(title_is_for(
            "sealkey prod-eu/airflow/airflow-ssh-secret",
            "prod-eu",
            "airflow",
            "airflow-ssh-secret"
        ));
        assert_eq!(sealkey_slot(&t), Some("prod-eu/airflow/airflow-ssh-secret"));
        assert_eq!(sealkey_slot("deploy key for CI"), None);
    }

    #[test]
    fn an_eks_arn_context_is_titled_by_its_cluster_name_without_the_account_id() {
        // Issue 21.10: `aws eks update-kubeconfig` names the context by the cluster's ARN, and
        // the title put the AWS account id on GitHub.
        let d = jiff::civil::date(2026, 12, 6);
        let arn = "arn:aws:eks:eu-west-1:123456789012:cluster/prod-eu";
        let t = key_title(arn, "airflow", "airflow-ssh-secret", d);
        assert_eq!(t, "sealkey prod-eu/airflow/airflow-ssh-secret 2026-12-06");
        assert!(!t.contains("123456789012"));
        assert_eq!(
            cluster_name("arn:aws-us-gov:eks:us-gov-west-1:1:cluster/c"),
            "c"
        );
        assert_eq!(cluster_name("kind-dev"), "kind-dev");
        assert_eq!(
            cluster_name("arn:aws:iam::1:role/x"),
            "arn:aws:iam::1:role/x"
        );
        // Keys titled with the whole ARN before still belong to the same Secret.
        let old = format!("sealkey {arn}/airflow/airflow-ssh-secret 2026-11-01");
        assert!(title_is_for(
            &old,
            "prod-eu",
            "airflow",
            "airflow-ssh-secret"
        ));
        assert!(title_is_for(&t, arn, "airflow", "airflow-ssh-secret"));
        assert!(!title_is_for(
            &old,
            "prod-us",
            "airflow",
            "airflow-ssh-secret"
        ));
        assert_eq!(
            slot_cluster(&old, "airflow", "airflow-ssh-secret"),
            Some(arn)
        );
        assert_eq!(slot_cluster(&t, "airflow", "other"), None);
    }

    #[test]
    fn a_moment_is_titled_with_its_utc_date() {
        let at: jiff::Timestamp = "2026-11-26T23:30:00-05:00".parse().unwrap();
        assert_eq!(key_title_at("c", "n", "s", at), "sealkey c/n/s 2026-11-27");
    }
}
