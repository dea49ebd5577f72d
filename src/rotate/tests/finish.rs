//! `rotate --finish`: the fault matrix.

use super::*;

fn finish_cell(op: &'static str, fault: Fault) {
    let w = world(vec![]);
    let mut s = settings();
    s.keep_old = true;
    block_on(rotate_in_cluster(&s, &w.cluster, &w.gh, &no_progress)).unwrap();
    let cell = format!("rotate --finish, {op} x {fault:?}");
    if Fault::GITHUB.contains(&fault) {
        *w.gh.fault.borrow_mut() = Some((op, fault));
    } else {
        *w.cluster.fault.borrow_mut() = Some((op, fault));
    }
    let r = block_on(finish(&s, &w.cluster, &w.gh, &no_progress));
    assert_invariant(&w, &cell);
    if r.is_err() && !(op == "delete" && fault.effect_lands()) {
        assert_eq!(
            w.gh.keys.borrow().len(),
            2,
            "{cell}: deleted something although it failed"
        );
    }
    // Retrying finishes the job.
    let _ = block_on(finish(&s, &w.cluster, &w.gh, &no_progress));
    assert_one_key_equal_to_live(&w, &cell);
}

#[test]
fn fault_matrix_rotate_finish_keeps_the_invariant_in_every_cell() {
    for op in ["list", "delete"] {
        for f in Fault::GITHUB {
            finish_cell(op, f);
        }
    }
    for f in Fault::KUBE {
        finish_cell("read", f);
    }
}

/// A `--gitops` rotation whose file Flux has applied: the world (with `workloads`) and the new
/// key's fingerprint. `--finish` has not run yet.
fn gitops_applied(workloads: Vec<Workload>) -> (World, String) {
    let w = world(workloads);
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
    let mut doc = written.borrow_mut().take().unwrap();
    doc["metadata"]["resourceVersion"] = json!("77");
    *w.cluster.secret.borrow_mut() = Some(doc);
    (w, done.new_fingerprint)
}

#[test]
fn finish_restarts_subpath_readers_and_waits_for_their_rollout_before_deleting_the_old_key() {
    // Issue 21.1: after --gitops, --finish deleted the old key at once while a subPath reader
    // (the Airflow chart's git-sync) still ran it: every pull failed until someone restarted it.
    let (w, new_fp) = gitops_applied(vec![subpath_deployment()]);
    w.cluster.rollout_pending.set(2);
    let done = block_on(finish(&settings(), &w.cluster, &w.gh, &no_progress)).unwrap();
    assert_eq!(
        *w.cluster.restarted.borrow(),
        ["deployment/airflow-scheduler"],
        "the subPath reader was not restarted"
    );
    assert_eq!(
        w.cluster.rollout_pending.get(),
        0,
        "the old key went before the rollout finished"
    );
    assert_eq!(done.live_fingerprint, new_fp);
    assert_eq!(done.deleted.len(), 1);
    assert!(done.kept_because.is_none());
    assert_one_key_equal_to_live(&w, "finish with a subPath reader");
}

#[test]
fn finish_with_no_restart_keeps_the_old_key_while_subpath_readers_still_run_it() {
    // Issue 21.1: `--no-restart` was ignored by --finish, which deleted the key under the reader.
    let (w, _) = gitops_applied(vec![subpath_deployment()]);
    let mut s = settings();
    s.restart = false;
    let done = block_on(finish(&s, &w.cluster, &w.gh, &no_progress)).unwrap();
    assert!(done.deleted.is_empty(), "{:?}", done.deleted);
    assert!(w.cluster.restarted.borrow().is_empty());
    assert_eq!(w.gh.keys.borrow().len(), 2, "the old key was deleted");
    let why = done
        .kept_because
        .expect("no reason given")
        .render(&crate::cli::spelling::Flags);
    assert!(
        why.contains("deployment/airflow-scheduler") && why.contains("--finish"),
        "{why}"
    );
    // With restarts allowed, the next --finish restarts the reader and completes.
    block_on(finish(&settings(), &w.cluster, &w.gh, &no_progress)).unwrap();
    assert_one_key_equal_to_live(&w, "finish after no-restart");
}

#[test]
fn finish_waits_the_sync_wait_for_volume_readers_even_when_it_never_polled() {
    // Issue 21.1: --sync-wait applied only when --finish had polled for the change, so a user who
    // checked the Secret first and then ran --finish gave volume readers 0 s.
    let (w, _) = gitops_applied(vec![plain_volume_deployment()]);
    let mut s = settings();
    s.sync_wait = Duration::from_millis(400);
    let started = std::time::Instant::now();
    block_on(finish(&s, &w.cluster, &w.gh, &no_progress)).unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "deleted after {:?}",
        started.elapsed()
    );
    assert_one_key_equal_to_live(&w, "finish with a volume reader");
}

#[test]
fn finish_keeps_the_old_key_when_a_restarted_reader_never_rolls_out() {
    // Issue 21.3: a later --finish deleted the old key without checking the rollout.
    let (w, _) = gitops_applied(vec![subpath_deployment()]);
    w.cluster.rollout_pending.set(u32::MAX);
    let mut s = settings();
    s.timeout = Duration::from_millis(50);
    let e = block_on(finish(&s, &w.cluster, &w.gh, &no_progress)).unwrap_err();
    assert_eq!(e.exit_code(), 3, "{e}");
    assert_eq!(w.gh.keys.borrow().len(), 2, "the old key was deleted");
    let text = whole(&e);
    assert!(text.contains("restart workloads"), "{text}");
}

#[test]
fn finish_from_a_differently_named_context_names_the_cluster_the_keys_are_titled_for() {
    // Issue 21.10: a teammate whose kubeconfig context names the cluster differently ran --finish
    // on a Secret Helm renders (no previous-fingerprint annotation) and got "nothing to finish".
    let (w, _) = gitops_applied(vec![]);
    {
        let mut secret = w.cluster.secret.borrow_mut();
        let doc = secret.as_mut().unwrap();
        doc["metadata"]["annotations"]
            .as_object_mut()
            .unwrap()
            .remove(PREVIOUS_FINGERPRINT);
    }
    let mut s = settings();
    s.context = "arn:aws:eks:eu-west-1:123456789012:cluster/teammate".into();
    let e = block_on(finish(&s, &w.cluster, &w.gh, &no_progress)).unwrap_err();
    assert_eq!(e.exit_code(), 2, "{e}");
    let text = whole(&e);
    assert!(text.contains("--cluster kind-test"), "{text}");
    assert_eq!(w.gh.keys.borrow().len(), 2);
    // With the name the keys were titled under, it finishes.
    block_on(finish(&settings(), &w.cluster, &w.gh, &no_progress)).unwrap();
    assert_one_key_equal_to_live(&w, "finish with --cluster");
}

#[test]
fn a_lasting_kubernetes_refusal_while_finish_brings_readers_over_deletes_nothing() {
    // The readers step of --finish under faults: a lasting refusal (RBAC) to list, restart or
    // read a rollout keeps both keys registered (exit 3); once it clears, --finish completes.
    for op in ["list_workloads", "restart", "rollout_status"] {
        for fault in Fault::KUBE {
            let cell = format!("rotate --finish readers, {op} x {fault:?} (lasting)");
            let (w, _) = gitops_applied(vec![subpath_deployment()]);
            w.cluster.persistent.set(true);
            *w.cluster.fault.borrow_mut() = Some((op, fault));
            let mut s = settings();
            s.timeout = Duration::from_millis(50);
            let e = block_on(finish(&s, &w.cluster, &w.gh, &no_progress)).unwrap_err();
            assert_eq!(e.exit_code(), 3, "{cell}: {e}");
            assert_eq!(
                w.gh.keys.borrow().len(),
                2,
                "{cell}: deleted under a reader"
            );
            assert_invariant(&w, &cell);
            *w.cluster.fault.borrow_mut() = None;
            block_on(finish(&settings(), &w.cluster, &w.gh, &no_progress)).unwrap();
            assert_one_key_equal_to_live(&w, &cell);
        }
    }
}
