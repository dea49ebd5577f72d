//! `rotate --gitops`: the fault matrix and pending rotations (refused over, finished, abandoned).

use super::*;

fn gitops_cell(op: &'static str, fault: Option<Fault>, write_fails: bool) {
    let w = world(vec![]);
    let cell = format!("rotate --gitops, {op} x {fault:?} write_fails={write_fails}");
    if let Some(f) = fault {
        if Fault::GITHUB.contains(&f) {
            *w.gh.fault.borrow_mut() = Some((op, f));
        } else {
            *w.cluster.fault.borrow_mut() = Some((op, f));
        }
    }
    let written: RefCell<Option<Value>> = RefCell::default();
    let result = block_on(rotate_gitops(
        &settings(),
        &w.cluster,
        &w.gh,
        |doc: &NewKey<'_>| {
            if write_fails {
                return Err(Error::file(
                    "write",
                    "out.yaml",
                    std::io::Error::other("disk full"),
                ));
            }
            *written.borrow_mut() = Some(doc.secret.expose_docs()[0].clone());
            Ok(())
        },
        &no_progress,
    ));
    // The cluster is never touched by --gitops.
    assert_eq!(
        w.cluster.live().annotations[keys::FINGERPRINT],
        w.old.fingerprint(),
        "{cell}"
    );
    let Ok(done) = result else {
        assert_invariant(&w, &cell);
        assert_eq!(
            w.gh.keys.borrow().len(),
            1,
            "{cell}: the new key was left registered"
        );
        return;
    };
    // Success: the old (live) key and the new, pending key are registered, nothing else.
    let fps = registered_fingerprints(&w);
    assert_eq!(
        fps,
        [
            w.old.fingerprint().to_string(),
            done.new_fingerprint.clone()
        ],
        "{cell}"
    );
    // --finish before the Secret changed refuses and deletes nothing.
    let early = block_on(finish(&settings(), &w.cluster, &w.gh, &no_progress)).unwrap_err();
    assert_eq!(early.exit_code(), 2, "{cell}: {early}");
    assert_eq!(w.gh.keys.borrow().len(), 2, "{cell}");
    // Flux applies the manifest.
    let mut doc = written.borrow_mut().take().unwrap();
    doc["metadata"]["resourceVersion"] = json!("77");
    *w.cluster.secret.borrow_mut() = Some(doc);
    let fin = block_on(finish(&settings(), &w.cluster, &w.gh, &no_progress)).unwrap();
    assert_eq!(fin.live_fingerprint, done.new_fingerprint);
    assert_one_key_equal_to_live(&w, &cell);
}

#[test]
fn fault_matrix_rotate_gitops_keeps_the_invariant_in_every_cell() {
    gitops_cell("none", None, false);
    gitops_cell("none", None, true);
    for f in Fault::GITHUB {
        gitops_cell("list", Some(f), false);
        gitops_cell("register", Some(f), false);
        gitops_cell("delete", Some(f), true); // the undo fails once
    }
    for f in Fault::KUBE {
        gitops_cell("read", Some(f), false);
    }
}

/// A `--gitops` rotation whose file was written but not applied: (the world, the pending key's
/// manifest as Flux would apply it, its fingerprint).
fn pending_gitops() -> (World, Value, String) {
    let w = world(vec![subpath_deployment()]);
    let written: RefCell<Option<Value>> = RefCell::default();
    let done = block_on(rotate_gitops(
        &settings(),
        &w.cluster,
        &w.gh,
        |doc: &NewKey<'_>| {
            *written.borrow_mut() = Some(doc.secret.expose_docs()[0].clone());
            Ok(())
        },
        &no_progress,
    ))
    .unwrap();
    let doc = written.borrow_mut().take().unwrap();
    (w, doc, done.new_fingerprint)
}

#[test]
fn apply_or_gitops_over_a_pending_gitops_rotation_refuses_and_changes_nothing() {
    let (w, _, pending_fp) = pending_gitops();
    let keys_before: Vec<u64> = w.gh.keys.borrow().iter().map(|k| k.id).collect();
    w.gh.requests.borrow_mut().clear();
    let err = apply_rotation(&w).unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");
    let mut msg = String::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    while let Some(e) = source {
        msg.push_str(&format!(" / {}", crate::cli::spelling::show(e)));
        source = e.source();
    }
    assert!(
        msg.contains("pending") && msg.contains("--abandon-pending") && msg.contains("--finish"),
        "{msg}"
    );
    let err = block_on(rotate_gitops(
        &settings(),
        &w.cluster,
        &w.gh,
        |_: &NewKey<'_>| panic!("nothing may be written over a pending rotation"),
        &no_progress,
    ))
    .unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");
    // Only reads reached GitHub; the pending key and the live Secret are untouched.
    assert_eq!(*w.gh.requests.borrow(), ["GET keys", "GET keys"]);
    let keys_after: Vec<u64> = w.gh.keys.borrow().iter().map(|k| k.id).collect();
    assert_eq!(keys_after, keys_before);
    assert!(w
        .gh
        .keys
        .borrow()
        .iter()
        .any(|k| super::plan::fingerprint(k).as_deref() == Some(pending_fp.as_str())));
    assert_eq!(
        w.cluster.live().annotations[keys::FINGERPRINT],
        w.old.fingerprint()
    );
}

#[test]
fn the_pending_file_applied_then_finish_works_and_then_apply_is_allowed_again() {
    let (w, mut doc, pending_fp) = pending_gitops();
    doc["metadata"]["resourceVersion"] = json!("77");
    *w.cluster.secret.borrow_mut() = Some(doc);
    block_on(finish(&settings(), &w.cluster, &w.gh, &no_progress)).unwrap();
    assert_eq!(w.cluster.live().annotations[keys::FINGERPRINT], pending_fp);
    apply_rotation(&w).unwrap();
    let keys = w.gh.keys.borrow();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let live_fp = key_in_secret(&w.cluster.live(), None)
        .unwrap()
        .key
        .fingerprint()
        .to_string();
    assert_eq!(
        super::plan::fingerprint(&keys[0]).as_deref(),
        Some(live_fp.as_str())
    );
    assert_ne!(live_fp, pending_fp);
}

#[test]
fn abandon_pending_lets_apply_and_gitops_proceed_and_deletes_the_abandoned_key() {
    let mut s = settings();
    s.abandon_pending = true;
    // --apply: the abandoned key is deleted with the old one.
    let (w, _, pending_fp) = pending_gitops();
    block_on(rotate_in_cluster(&s, &w.cluster, &w.gh, &no_progress)).unwrap();
    assert_one_key_equal_to_live(&w, "apply --abandon-pending");
    assert!(!w
        .gh
        .keys
        .borrow()
        .iter()
        .any(|k| super::plan::fingerprint(k).as_deref() == Some(pending_fp.as_str())));
    // --gitops: the abandoned key goes first, so the new rotation's --finish is not blocked.
    let (w, _, pending_fp) = pending_gitops();
    let written: RefCell<Option<Value>> = RefCell::default();
    let done = block_on(rotate_gitops(
        &s,
        &w.cluster,
        &w.gh,
        |doc: &NewKey<'_>| {
            *written.borrow_mut() = Some(doc.secret.expose_docs()[0].clone());
            Ok(())
        },
        &no_progress,
    ))
    .unwrap();
    let fps = registered_fingerprints(&w);
    assert_eq!(
        fps,
        [
            w.old.fingerprint().to_string(),
            done.new_fingerprint.clone()
        ]
    );
    assert!(!fps.contains(&pending_fp));
    let mut doc = written.borrow_mut().take().unwrap();
    doc["metadata"]["resourceVersion"] = json!("78");
    *w.cluster.secret.borrow_mut() = Some(doc);
    block_on(finish(&settings(), &w.cluster, &w.gh, &no_progress)).unwrap();
    assert_one_key_equal_to_live(&w, "gitops --abandon-pending then finish");
}

#[test]
fn the_gitops_file_carries_no_helm_flux_argo_or_eso_metadata_of_the_live_secret() {
    // Issue 21.5: --gitops built the file from the live object and committed Helm's hook
    // annotations, meta.helm.sh/*, helm.toolkit.fluxcd.io/* (and Flux's kustomize labels); from
    // then on --apply refused the Secret as Helm-owned forever.
    let w = world(vec![]);
    {
        let mut secret = w.cluster.secret.borrow_mut();
        let meta = &mut secret.as_mut().unwrap()["metadata"];
        for (k, v) in [
            ("app.kubernetes.io/managed-by", "Helm"),
            ("helm.toolkit.fluxcd.io/name", "airflow"),
            ("helm.toolkit.fluxcd.io/namespace", "flux-system"),
            ("kustomize.toolkit.fluxcd.io/name", "apps"),
            ("kustomize.toolkit.fluxcd.io/namespace", "flux-system"),
            ("reconcile.external-secrets.io/created-by", "abc"),
            ("helm.sh/chart", "airflow-1.15.0"),
            ("heritage", "Helm"),
        ] {
            meta["labels"][k] = json!(v);
        }
        for (k, v) in [
            ("helm.sh/hook", "pre-install,pre-upgrade"),
            ("helm.sh/hook-delete-policy", "before-hook-creation"),
            ("helm.sh/hook-weight", "0"),
            ("meta.helm.sh/release-name", "airflow"),
            ("meta.helm.sh/release-namespace", "dev"),
            (
                "argocd.argoproj.io/tracking-id",
                "a:/Secret:dev/airflow-ssh-secret",
            ),
            ("kustomize.toolkit.fluxcd.io/checksum", "abc"),
            ("reconcile.external-secrets.io/data-hash", "abc"),
            ("kubectl.kubernetes.io/last-applied-configuration", "{}"),
        ] {
            meta["annotations"][k] = json!(v);
        }
        meta["uid"] = json!("6f1c-uid");
        meta["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
        meta["managedFields"] = json!([{"manager": "helm", "operation": "Update"}]);
        meta["ownerReferences"] =
            json!([{"kind": "HelmRelease", "name": "airflow", "uid": "x", "apiVersion": "v1"}]);
    }
    let written: RefCell<Option<Value>> = RefCell::default();
    block_on(rotate_gitops(
        &settings(),
        &w.cluster,
        &w.gh,
        |doc: &NewKey<'_>| {
            *written.borrow_mut() = Some(doc.secret.expose_docs()[0].clone());
            Ok(())
        },
        &no_progress,
    ))
    .unwrap();
    let doc = written.borrow_mut().take().unwrap();
    let meta = &doc["metadata"];
    let text = serde_json::to_string(meta).unwrap();
    for gone in [
        "helm",
        "fluxcd",
        "argocd",
        "external-secrets",
        "Helm",
        "uid",
        "managedFields",
        "ownerReferences",
        "creationTimestamp",
        "last-applied",
        "resourceVersion",
    ] {
        assert!(!text.contains(gone), "{gone} committed: {text}");
    }
    // What the user and sealkey put there stays.
    assert_eq!(meta["labels"]["team"], "data");
    assert_eq!(meta["labels"]["app.kubernetes.io/managed-by"], Value::Null);
    assert_eq!(meta["annotations"]["owner"], "data-eng");
    assert_eq!(meta["annotations"][keys::CONSUMER], "airflow-chart");
}
