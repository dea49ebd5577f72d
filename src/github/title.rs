//! Deploy key titles: `sealkey CLUSTER/NAMESPACE/SECRET YYYY-MM-DDTHH:MM:SS.sssZ`, CLUSTER being
//! `NAME#UID8` ([`cluster_part`]) or NAME (titles made before
//! 2026-12 end in the date only, and are still read). Built and read here only, so
//! `create --register`, `rotate`, `register` and the hygiene checks agree on one format.
//!
//! The slot `CONTEXT/NAMESPACE/SECRET` keeps keys of different clusters on one repository apart
//! (fluxcd/flux2#964); rotation finds its own keys by it, and orders them by the moment in the
//! title ([`title_time`]), never by GitHub's ids (a key deleted and registered again gets a
//! higher id than a key registered after it).

/// The title for the key of Secret `namespace/secret` in cluster `context`, registered on `date`.
/// An EKS context (an ARN) is titled by its cluster name: the ARN would put the AWS account id
/// on GitHub.
pub fn key_title(context: &str, namespace: &str, secret: &str, date: jiff::civil::Date) -> String {
    let cluster = context_name(context);
    format!("sealkey {cluster}/{namespace}/{secret} {date}")
}

/// The cluster's name in a kubeconfig context: `NAME` of an EKS ARN
/// (`arn:PARTITION:eks:REGION:ACCOUNT:cluster/NAME`, what `aws eks update-kubeconfig` names its
/// context), else the context itself.
pub fn context_name(context: &str) -> &str {
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

/// The cluster part of a slot: `NAME#UID8` (the first 8 characters of the cluster's
/// `kube-system` namespace UID, with the context or `--cluster` name for people) when the
/// cluster's identity is known, else NAME alone (the format of titles made before 2026-12).
/// NAME is [`context_name`] of `name`: an EKS ARN never reaches GitHub.
pub fn cluster_part(name: &str, uid: Option<&str>) -> String {
    let name = context_name(name);
    match uid.map(|u| {
        u.chars()
            .filter(char::is_ascii_alphanumeric)
            .take(8)
            .collect::<String>()
    }) {
        Some(u) if !u.is_empty() => format!("{name}#{u}"),
        _ => name.to_string(),
    }
}

/// The name part of a cluster part (`NAME#UID8` -> `NAME`), whose titles made before sealkey
/// identified clusters read `sealkey NAME/NAMESPACE/SECRET DATE`.
pub fn cluster_name(cluster_part: &str) -> &str {
    cluster_part.split('#').next().unwrap_or(cluster_part)
}

/// The title for the key of Secret `namespace/secret` in cluster `context`, registered at `at`
/// (UTC, to the millisecond): rotation orders a slot's keys by it.
pub fn key_title_at(context: &str, namespace: &str, secret: &str, at: jiff::Timestamp) -> String {
    format!(
        "sealkey {context}/{namespace}/{secret} {}",
        at.strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
    )
}

/// The moment a sealkey title records: `YYYY-MM-DDTHH:MM:SS.sssZ`, or for an older title
/// `YYYY-MM-DD` read as the start of that day (UTC). `None` when the title has neither.
pub fn title_time(title: &str) -> Option<jiff::Timestamp> {
    let when = title.strip_prefix("sealkey ")?.split_whitespace().nth(1)?;
    if let Ok(t) = when.parse::<jiff::Timestamp>() {
        return Some(t);
    }
    let date: jiff::civil::Date = when.parse().ok()?;
    date.to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp())
}

/// The title `sealkey register` gives a public key it was handed: `sealkey LABEL YYYY-MM-DD`,
/// where LABEL is the key's comment or the repository. It has no slot of a Secret.
pub fn label_title(label: &str, date: jiff::civil::Date) -> String {
    format!("sealkey {label} {date}")
}

/// Whether `title` marks a key registered for Secret `namespace/secret` in cluster `context` (a
/// cluster part, [`cluster_part`]). Between names without an identity (titles made before
/// 2026-12), a key titled with the whole EKS ARN still matches its cluster name.
pub fn title_is_for(title: &str, context: &str, namespace: &str, secret: &str) -> bool {
    slot_cluster(title, namespace, secret).is_some_and(|c| {
        c == context
            || (!c.contains('#')
                && !context.contains('#')
                && context_name(c) == context_name(context))
    })
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
            context_name("arn:aws-us-gov:eks:us-gov-west-1:1:cluster/c"),
            "c"
        );
        assert_eq!(context_name("kind-dev"), "kind-dev");
        assert_eq!(
            context_name("arn:aws:iam::1:role/x"),
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
        // With an identity the ARN never reaches the title either.
        assert_eq!(cluster_part(arn, Some("3f2a9c1e-77")), "prod-eu#3f2a9c1e");
    }

    #[test]
    fn a_moment_is_titled_with_its_utc_time_to_the_millisecond_and_read_back() {
        let at: jiff::Timestamp = "2026-11-26T23:30:00.75-05:00".parse().unwrap();
        let t = key_title_at("c", "n", "s", at);
        assert_eq!(t, "sealkey c/n/s 2026-11-27T04:30:00.750Z");
        assert!(title_is_for(&t, "c", "n", "s"));
        assert_eq!(
            title_time(&t),
            Some("2026-11-27T04:30:00.75Z".parse().unwrap())
        );
    }

    #[test]
    fn clusters_named_alike_get_different_slots_by_their_kube_system_uid() {
        let a = cluster_part("default", Some("3f2a9c1e-77aa-4b1c-9d3e-000000000001"));
        let b = cluster_part("default", Some("9b0c11d2-77aa-4b1c-9d3e-000000000001"));
        assert_eq!(a, "default#3f2a9c1e");
        assert_ne!(a, b);
        assert_eq!(cluster_part("default", None), "default");
        assert_eq!(cluster_part("prod", Some("")), "prod");
        assert_eq!(cluster_name(&a), "default");
        assert_eq!(cluster_name("prod-eu"), "prod-eu");
        let t = key_title_at(&a, "dev", "s", jiff::Timestamp::UNIX_EPOCH);
        assert!(title_is_for(&t, &a, "dev", "s"));
        assert!(!title_is_for(&t, &b, "dev", "s"));
        assert!(!title_is_for(&t, "default", "dev", "s"));
    }

    #[test]
    fn older_date_only_titles_read_as_the_start_of_their_day_and_other_titles_as_none() {
        assert_eq!(
            title_time("sealkey c/n/s 2026-11-27"),
            Some("2026-11-27T00:00:00Z".parse().unwrap())
        );
        assert_eq!(title_time("sealkey c/n/s"), None);
        assert_eq!(title_time("sealkey c/n/s yesterday"), None);
        assert_eq!(title_time("deploy key 2026-11-27"), None);
    }
}
