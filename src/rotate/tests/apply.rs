//! `rotate --apply`: the happy path, the fault matrix, refusals (missing Secret, Helm owner) and
//! what survives a swap (Flux's identity.pub, no last-applied copy).

use super::*;

#[test]
fn happy_path_rotation_uses_three_github_requests_and_leaves_one_key_equal_to_the_live_secret() {
    let w = world(vec![subpath_deployment(), plain_volume_deployment()]);
    let done = apply_rotation(&w).unwrap();
    assert_one_key_equal_to_live(&w, "happy path");
    assert_eq!(
        *w.gh.requests.borrow(),
        ["GET keys", "POST keys", "DELETE keys/99"]
    );
    assert_eq!(
        *w.cluster.restarted.borrow(),
        ["deployment/airflow-scheduler"]
    );
    assert_eq!(done.deleted.len(), 1);
    assert!(done.old_was_registered);
    let live = w.cluster.live();
    assert_eq!(live.annotations[PREVIOUS_FINGERPRINT], w.old.fingerprint());
    assert_eq!(live.annotations[keys::FINGERPRINT], done.new_fingerprint);
}

#[test]
fn keep_old_and_no_restart_leave_the_old_key_registered_and_finish_removes_it() {
    for (keep_old, restart) in [(true, true), (false, false)] {
        let w = world(vec![subpath_deployment()]);
        let mut s = settings();
        s.keep_old = keep_old;
        s.restart = restart;
        let done = block_on(rotate_in_cluster(&s, &w.cluster, &w.gh, &no_progress)).unwrap();
        assert!(done.kept_because.is_some());
        assert_eq!(w.gh.keys.borrow().len(), 2);
        assert_eq!(w.cluster.restarted.borrow().is_empty(), !restart);
        if !restart {
            // `--finish --no-restart` cannot know the reader was restarted: it keeps the key.
            let fin = block_on(finish(&s, &w.cluster, &w.gh, &no_progress)).unwrap();
            assert!(fin.deleted.is_empty() && fin.kept_because.is_some());
        }
        // A plain `--finish` restarts the subPath reader, then deletes the old key.
        let fin = block_on(finish(&settings(), &w.cluster, &w.gh, &no_progress)).unwrap();
        assert_eq!(fin.deleted.len(), 1);
        assert_one_key_equal_to_live(&w, "keep-old/no-restart then finish");
    }
}

#[test]
fn a_conflicting_change_to_the_secret_aborts_and_deletes_the_new_key() {
    let w = world(vec![]);
    // Someone changes the Secret between our read and our write.
    struct Racing<'a>(&'a FakeCluster);
    impl SecretCluster for Racing<'_> {
        async fn read_secret(&self, ns: &str, n: &str) -> Result<Option<LiveSecret>> {
            self.0.read_secret(ns, n).await
        }
        async fn write_secret(&self, doc: &Value) -> Result<()> {
            self.0.secret.borrow_mut().as_mut().unwrap()["metadata"]["resourceVersion"] =
                json!("42");
            self.0.write_secret(doc).await
        }
        async fn list_workloads(&self, ns: &str) -> Result<Vec<Workload>> {
            self.0.list_workloads(ns).await
        }
        async fn restart(&self, k: WorkloadKind, ns: &str, n: &str, at: &str) -> Result<()> {
            self.0.restart(k, ns, n, at).await
        }
        async fn rollout_status(
            &self,
            k: WorkloadKind,
            ns: &str,
            n: &str,
        ) -> Result<RolloutStatus> {
            self.0.rollout_status(k, ns, n).await
        }
    }
    let err = block_on(rotate_in_cluster(
        &settings(),
        &Racing(&w.cluster),
        &w.gh,
        &no_progress,
    ))
    .unwrap_err();
    assert!(err.to_string().contains("update Secret"), "{err}");
    assert!(err.to_string().contains("deleted the new key"), "{err}");
    assert_eq!(w.gh.keys.borrow().len(), 1);
    assert_eq!(assert_invariant(&w, "conflict"), w.old.fingerprint());
}

/// One cell of the matrix: (operation faulted, fault). Returns whether the run succeeded.
fn direct_cell(op: &'static str, fault: Fault) -> String {
    let w = world(vec![subpath_deployment(), plain_volume_deployment()]);
    let cell = format!("rotate --apply, {op} x {fault:?}");
    if Fault::GITHUB.contains(&fault) {
        *w.gh.fault.borrow_mut() = Some((op, fault));
    } else {
        *w.cluster.fault.borrow_mut() = Some((op, fault));
    }
    let result = apply_rotation(&w);
    assert_invariant(&w, &cell);
    let keys_after = w.gh.keys.borrow().len();
    match &result {
        Ok(_) => {
            assert_one_key_equal_to_live(&w, &cell);
            "completed; 1 key, equal to the live one".to_string()
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.starts_with("step `"), "{cell}: {msg}");
            assert_eq!(e.exit_code(), crate::error::exit::REMOTE, "{cell}: {msg}");
            let step = msg.split('`').nth(1).unwrap().to_string();
            let live = w.cluster.live();
            if live.annotations.contains_key(PREVIOUS_FINGERPRINT) {
                // A failed run that left both keys can always be finished.
                block_on(finish(&settings(), &w.cluster, &w.gh, &no_progress)).unwrap();
                assert_one_key_equal_to_live(&w, &format!("{cell} then --finish"));
                format!("exit 3 at `{step}`; new key live, old kept ({keys_after} keys); `--finish` then leaves 1")
            } else {
                assert_eq!(keys_after, 1, "{cell}");
                format!("exit 3 at `{step}`; rolled back: old key only, Secret unchanged")
            }
        }
    }
}

pub(super) const DIRECT_GITHUB_OPS: [&str; 3] = ["list", "register", "delete"];
pub(super) const DIRECT_KUBE_OPS: [&str; 5] = [
    "read",
    "write",
    "list_workloads",
    "restart",
    "rollout_status",
];

#[test]
fn fault_matrix_rotate_apply_keeps_the_invariant_in_every_cell() {
    let mut cells = 0;
    for op in DIRECT_GITHUB_OPS {
        for f in Fault::GITHUB {
            eprintln!("| GitHub `{op}` | {f:?} | {} |", direct_cell(op, f));
            cells += 1;
        }
    }
    for op in DIRECT_KUBE_OPS {
        for f in Fault::KUBE {
            eprintln!("| Kubernetes `{op}` | {f:?} | {} |", direct_cell(op, f));
            cells += 1;
        }
    }
    assert_eq!(cells, 27);
}

#[test]
fn missing_secret_and_secret_without_a_key_are_input_errors_and_change_nothing() {
    let w = world(vec![]);
    *w.cluster.secret.borrow_mut() = None;
    let e = apply_rotation(&w).unwrap_err();
    assert_eq!(e.exit_code(), 2, "{e}");
    assert!(w.gh.requests.borrow().is_empty());

    let w = world(vec![]);
    w.cluster.secret.borrow_mut().as_mut().unwrap()["data"]["gitSshKey"] =
        json!(emit::b64(b"not a key").as_str());
    let mut s = settings();
    s.consumer = None;
    let e = block_on(rotate_in_cluster(&s, &w.cluster, &w.gh, &no_progress)).unwrap_err();
    assert_eq!(e.exit_code(), 2, "{e}");
    assert!(e.to_string().contains("read Secret"), "{e}");
    assert!(format!("{:?}", std::error::Error::source(&e))
        .contains("no passphrase-less OpenSSH private key"));
    assert!(w.gh.requests.borrow().is_empty());
}

#[test]
fn rollout_that_never_finishes_times_out_and_keeps_both_keys() {
    let w = world(vec![subpath_deployment()]);
    w.cluster.rollout_pending.set(u32::MAX);
    let mut s = settings();
    s.timeout = Duration::from_millis(30);
    let e = block_on(rotate_in_cluster(&s, &w.cluster, &w.gh, &no_progress)).unwrap_err();
    assert!(e.to_string().contains("restart workloads"), "{e}");
    assert_eq!(w.gh.keys.borrow().len(), 2);
    assert_invariant(&w, "rollout timeout");
}

#[test]
fn flux_identity_pub_follows_the_new_key() {
    let old = DeployKey::generate(KeyType::Ed25519, "old").unwrap();
    let mut doc = live_secret_doc(&old);
    let pem = old.private_pem().unwrap();
    doc["data"] = json!({
        "identity": emit::b64(pem.expose_secret().as_bytes()).as_str(),
        "identity.pub": emit::b64(old.public_openssh().as_bytes()).as_str(),
    });
    let live = LiveSecret::from_json(doc).unwrap();
    let new = DeployKey::generate(KeyType::Ed25519, "new").unwrap();
    let rotated = rotated_secret(
        &live,
        "identity",
        &new,
        old.fingerprint(),
        true,
        jiff::Timestamp::now(),
    )
    .unwrap();
    let back = LiveSecret::from_json(rotated.expose_docs()[0].clone()).unwrap();
    assert_eq!(
        key_in_secret(&back, Some(Consumer::Flux))
            .unwrap()
            .key
            .fingerprint(),
        new.fingerprint()
    );
    let public =
        String::from_utf8(back.value("identity.pub").unwrap().expose_secret().to_vec()).unwrap();
    assert_eq!(public.trim(), new.public_openssh());
    assert_eq!(back.resource_version.as_deref(), Some("41"));
}

#[test]
fn a_lasting_kubernetes_refusal_after_the_swap_keeps_both_keys_and_finish_completes_later() {
    for op in ["list_workloads", "restart", "rollout_status"] {
        for fault in Fault::KUBE {
            let w = world(vec![subpath_deployment()]);
            let cell = format!("lasting {op} x {fault:?}");
            *w.cluster.fault.borrow_mut() = Some((op, fault));
            w.cluster.persistent.set(true);
            let e = apply_rotation(&w).unwrap_err();
            assert_eq!(e.exit_code(), 3, "{cell}: {e}");
            assert!(
                e.to_string().contains("old keys stay registered"),
                "{cell}: {e}"
            );
            let live_fp = assert_invariant(&w, &cell);
            assert_ne!(
                live_fp,
                w.old.fingerprint(),
                "{cell}: the swap happened before {op}"
            );
            assert_eq!(w.gh.keys.borrow().len(), 2, "{cell}");
            *w.cluster.fault.borrow_mut() = None;
            block_on(finish(&settings(), &w.cluster, &w.gh, &no_progress)).unwrap();
            assert_one_key_equal_to_live(&w, &cell);
        }
    }
}

/// Regression guard: a Secret made with `kubectl apply` carries its whole previous body (the old
/// private key in base64) in an annotation; the rotated document must not carry it on.
#[test]
fn kubectl_last_applied_annotation_with_the_old_key_is_not_copied() {
    let old = DeployKey::generate(KeyType::Ed25519, "old").unwrap();
    let mut doc = live_secret_doc(&old);
    let old_b64 = doc["data"]["gitSshKey"].as_str().unwrap().to_string();
    let record =
        json!({"apiVersion": "v1", "kind": "Secret", "data": {"gitSshKey": old_b64}}).to_string();
    doc["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] =
        json!(record);
    let live = LiveSecret::from_json(doc).unwrap();
    let new = DeployKey::generate(KeyType::Ed25519, "new").unwrap();
    let rotated = rotated_secret(
        &live,
        "gitSshKey",
        &new,
        old.fingerprint(),
        false,
        jiff::Timestamp::now(),
    )
    .unwrap();
    let text = serde_json::to_string(&rotated.expose_docs()[0]).unwrap();
    assert!(
        !text.contains(&old_b64[300..360]),
        "the old key travelled on"
    );
    assert!(!text.contains("last-applied-configuration"));
    assert_eq!(
        rotated.expose_docs()[0]["metadata"]["annotations"]["owner"],
        "data-eng"
    );
}

#[test]
fn apply_on_a_helm_owned_secret_is_refused_before_anything_is_registered() {
    // The Airflow chart renders extraSecrets as Helm hooks: a Secret rotated in place would be put
    // back by the next upgrade, after the old key was deleted from GitHub (an outage).
    for (labels, annotations) in [
        (json!({"app.kubernetes.io/managed-by": "Helm"}), json!({})),
        (
            json!({}),
            json!({"meta.helm.sh/release-name": "airflow", "meta.helm.sh/release-namespace": "dev"}),
        ),
        (
            json!({}),
            json!({"helm.sh/hook": "pre-install,pre-upgrade"}),
        ),
        (json!({"helm.toolkit.fluxcd.io/name": "airflow"}), json!({})),
    ] {
        let w = world(vec![]);
        {
            let mut secret = w.cluster.secret.borrow_mut();
            let doc = secret.as_mut().unwrap();
            for (k, v) in labels.as_object().unwrap() {
                doc["metadata"]["labels"][k] = v.clone();
            }
            for (k, v) in annotations.as_object().unwrap() {
                doc["metadata"]["annotations"][k] = v.clone();
            }
        }
        let before = w.cluster.secret.borrow().clone();
        let e = apply_rotation(&w).unwrap_err();
        assert_eq!(e.exit_code(), 2, "{e}");
        let Error::Rotation { source, .. } = &e else {
            panic!("not a rotation error: {e}")
        };
        let source = source.render(&crate::cli::spelling::Flags);
        assert!(
            source.contains("Helm owns it") && source.contains("--gitops"),
            "{source}"
        );
        assert!(w.gh.requests.borrow().is_empty(), "GitHub was called");
        assert_eq!(*w.cluster.secret.borrow(), before, "the Secret changed");
    }
}

#[test]
fn apply_on_a_secret_any_gitops_controller_owns_is_refused_with_the_route_that_works() {
    // Issue 21.2: only Helm was recognised; a Secret Flux's kustomize-controller applies (or Argo
    // CD syncs, ESO renders, Sealed Secrets unseals) was rotated in place, and the controller put
    // the committed key back after the old one was deleted from GitHub.
    let owner_ref = |kind: &str, api: &str| json!([{"apiVersion": api, "kind": kind, "name": "airflow-ssh-secret", "uid": "u-1", "controller": true}]);
    let cases = [
        (
            json!({"kustomize.toolkit.fluxcd.io/name": "apps", "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}),
            json!({}),
            Value::Null,
            "kustomize-controller",
            "--gitops",
        ),
        (
            json!({}),
            json!({"argocd.argoproj.io/tracking-id": "airflow:/Secret:dev/airflow-ssh-secret"}),
            Value::Null,
            "Argo CD",
            "--gitops",
        ),
        (
            json!({"app.kubernetes.io/instance": "airflow"}),
            json!({}),
            Value::Null,
            "Argo CD",
            "--gitops",
        ),
        (
            json!({"reconcile.external-secrets.io/created-by": "abc"}),
            json!({}),
            Value::Null,
            "External Secrets",
            "--store",
        ),
        (
            json!({}),
            json!({}),
            owner_ref("ExternalSecret", "external-secrets.io/v1"),
            "External Secrets",
            "--store",
        ),
        (
            json!({}),
            json!({}),
            owner_ref("SealedSecret", "bitnami.com/v1alpha1"),
            "Sealed Secrets",
            "--seal sealed-secrets",
        ),
        (
            json!({"helm.toolkit.fluxcd.io/name": "airflow"}),
            json!({}),
            Value::Null,
            "helm-controller",
            "--update",
        ),
    ];
    for (labels, annotations, owners, who, route) in cases {
        let w = world(vec![]);
        {
            let mut secret = w.cluster.secret.borrow_mut();
            let doc = secret.as_mut().unwrap();
            for (k, v) in labels.as_object().unwrap() {
                doc["metadata"]["labels"][k] = v.clone();
            }
            for (k, v) in annotations.as_object().unwrap() {
                doc["metadata"]["annotations"][k] = v.clone();
            }
            if !owners.is_null() {
                doc["metadata"]["ownerReferences"] = owners.clone();
            }
        }
        let before = w.cluster.secret.borrow().clone();
        let e = apply_rotation(&w).unwrap_err();
        assert_eq!(e.exit_code(), 2, "{who}: {e}");
        let text = whole(&e);
        assert!(
            text.contains(who) && text.contains(route),
            "{who}: no {route} in: {text}"
        );
        assert!(
            w.gh.requests.borrow().is_empty(),
            "{who}: GitHub was called"
        );
        assert_eq!(
            *w.cluster.secret.borrow(),
            before,
            "{who}: the Secret changed"
        );
    }
}
