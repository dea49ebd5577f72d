//! Servers that succeed wrongly, commit late, or put words in sealkey's mouth (issue 22): a
//! Secret write answered 200 that stored nothing, a write that lands after the client gave up,
//! a `previous-fingerprint` annotation naming someone else's key, GitHub ids that do not follow
//! registration order. After every cell: the live key is registered and no key anything
//! depends on was deleted.

use super::*;

/// The promise under faults that leave the outcome open: the key in the live Secret is
/// registered (read-only), and every key in `depended_on` (keys a Secret, a committed file or
/// a late write may still carry) is still registered.
fn assert_live_registered_and_kept(w: &World, depended_on: &[&str], cell: &str) -> String {
    let live = w.cluster.live();
    let live_fp = key_in_secret(&live, None)
        .unwrap()
        .key
        .fingerprint()
        .to_string();
    let fps = registered_fingerprints(w);
    assert!(
        fps.contains(&live_fp),
        "{cell}: live key {live_fp} not registered; keys {fps:?}"
    );
    for fp in depended_on {
        assert!(
            fps.iter().any(|f| f == fp),
            "{cell}: {fp} was deleted although something depends on it; keys {fps:?}"
        );
    }
    assert!(w.gh.keys.borrow().iter().all(|k| k.read_only), "{cell}");
    live_fp
}

/// The fingerprint of the one registered key that is neither the old key nor `but`.
fn new_fingerprint(w: &World) -> String {
    registered_fingerprints(w)
        .into_iter()
        .find(|f| f != w.old.fingerprint())
        .expect("a new key is registered")
}

// Was: the 200 was taken at its word; "now holds <new>", the old key deleted, exit 0, and the
// live Secret held a key GitHub no longer had.
#[test]
fn a_secret_write_answered_200_that_stored_nothing_deletes_no_key() {
    let w = world(vec![subpath_deployment()]);
    w.cluster.write_behaviour.set(WriteBehaviour::WrongSuccess);
    let result = apply_rotation(&w);
    let cell = "wrong success";
    let live_fp = assert_live_registered_and_kept(&w, &[w.old.fingerprint()], cell);
    assert_eq!(
        live_fp,
        w.old.fingerprint(),
        "{cell}: the fake stored nothing"
    );
    let e = result.expect_err("a write that did not show must not end in success");
    assert_eq!(e.exit_code(), crate::error::exit::REMOTE, "{e}");
    let msg = e.to_string();
    assert!(msg.contains("update Secret"), "{msg}");
    // The new key stays registered: the write may still land (see the late-commit cells).
    let new_fp = new_fingerprint(&w);
    assert!(msg.contains(&new_fp), "names the new key: {msg}");
    assert!(
        w.cluster.restarted.borrow().is_empty(),
        "restarted for nothing"
    );
    // --finish does not delete anything while the Secret still holds the old key.
    let fin = block_on(finish(&settings(), &w.cluster, &w.gh, &no_progress));
    assert!(fin.is_err());
    assert_live_registered_and_kept(&w, &[w.old.fingerprint(), &new_fp], "then --finish");
    // --apply over it refuses, --abandon-pending then ends with one key, equal to the live one.
    let mut s = settings();
    s.abandon_pending = true;
    w.cluster.write_behaviour.set(WriteBehaviour::Honest);
    block_on(rotate_in_cluster(&s, &w.cluster, &w.gh, &no_progress)).unwrap();
    assert_one_key_equal_to_live(&w, "then --apply --abandon-pending");
}

// Was: the answer was trusted, readers restarted and the old key deleted before the write landed.
#[test]
fn a_secret_write_answered_200_that_lands_late_is_waited_for_before_any_deletion() {
    let w = world(vec![subpath_deployment()]);
    w.cluster
        .write_behaviour
        .set(WriteBehaviour::LateAfterSuccess(3));
    let done = apply_rotation(&w).unwrap();
    assert_one_key_equal_to_live(&w, "200, lands after 3 reads");
    assert_eq!(
        w.cluster.live().annotations[keys::FINGERPRINT],
        done.new_fingerprint
    );
}

// Was: read back at once, saw the old key, deleted the *new* one and said "everything is as
// before"; the write then landed and the Secret held an unregistered key.
#[test]
fn a_timed_out_write_that_commits_late_is_not_undone_before_a_read_shows_which_key_is_live() {
    let w = world(vec![subpath_deployment()]);
    w.cluster
        .write_behaviour
        .set(WriteBehaviour::LateAfterTimeout(3));
    let result = apply_rotation(&w);
    assert_live_registered_and_kept(&w, &[], "timeout, lands after 3 reads");
    result.unwrap();
    assert_one_key_equal_to_live(&w, "timeout, lands after 3 reads");
}

#[test]
fn a_write_that_commits_after_the_bound_keeps_both_keys_and_finish_completes_once_it_lands() {
    let w = world(vec![subpath_deployment()]);
    w.cluster
        .write_behaviour
        .set(WriteBehaviour::LateAfterTimeout(u32::MAX));
    let e = apply_rotation(&w).unwrap_err();
    assert_eq!(e.exit_code(), crate::error::exit::REMOTE, "{e}");
    let new_fp = new_fingerprint(&w);
    assert_live_registered_and_kept(&w, &[w.old.fingerprint(), &new_fp], "outcome unknown");
    let Error::Rotation { undone, .. } = &e else {
        panic!("{e}")
    };
    let undone = undone.render(&crate::cli::spelling::Flags);
    assert!(
        undone.contains("--finish") && undone.contains("--abandon-pending"),
        "says how to finish either way: {undone}"
    );
    // The write lands after the run gave up: the Secret holds the new key, still registered.
    w.cluster.land_late_write();
    assert_live_registered_and_kept(&w, &[w.old.fingerprint(), &new_fp], "landed late");
    block_on(finish(&settings(), &w.cluster, &w.gh, &no_progress)).unwrap();
    assert_one_key_equal_to_live(&w, "landed late, then --finish");
}

// A GitOps controller (or anyone) puts the old Secret back after the swap was confirmed, while
// the run waits for readers: the old key is what pods get again, so it must not be deleted.
#[test]
fn the_old_key_is_not_deleted_when_a_fresh_read_before_deleting_shows_the_old_secret_again() {
    let w = world(vec![plain_volume_deployment()]);
    let original = w.cluster.secret.borrow().clone().unwrap();
    // read 1: plan; read 2: confirm the write; read 3 onwards: the old Secret is back.
    *w.cluster.lands_at_read.borrow_mut() = Some((3, original));
    let result = apply_rotation(&w);
    let new_fp = new_fingerprint(&w);
    let live_fp = assert_live_registered_and_kept(&w, &[w.old.fingerprint(), &new_fp], "reverted");
    assert_eq!(live_fp, w.old.fingerprint());
    let e = result.expect_err("deleting nothing is not a completed rotation");
    assert_eq!(e.exit_code(), crate::error::exit::REMOTE, "{e}");
}

fn foreign_key(w: &World, title: &str) -> DeployKey {
    foreign_key_with_id(w, title, 7)
}

fn foreign_key_with_id(w: &World, title: &str, id: u64) -> DeployKey {
    let k = DeployKey::generate(KeyType::Ed25519, "prod").unwrap();
    w.gh.keys.borrow_mut().push(DeployKeyInfo {
        id,
        title: title.into(),
        key: bare(k.public_openssh()),
        read_only: true,
        ..Default::default()
    });
    k
}

fn annotate_previous(w: &World, fp: &str) {
    w.cluster.secret.borrow_mut().as_mut().unwrap()["metadata"]["annotations"]
        [PREVIOUS_FINGERPRINT] = json!(fp);
}

// Was: --finish deleted whatever key the annotation named, whatever its title: whoever could
// patch one Secret in staging chose which production deploy key the operator's token deleted.
#[test]
fn finish_never_deletes_a_key_that_only_the_previous_fingerprint_annotation_names() {
    for title in [
        "sealkey prod/airflow/airflow-ssh-secret 2026-01-02",
        "production deploy key",
    ] {
        let w = world(vec![]);
        let prod = foreign_key(&w, title);
        let mut s = settings();
        s.keep_old = true;
        block_on(rotate_in_cluster(&s, &w.cluster, &w.gh, &no_progress)).unwrap();
        annotate_previous(&w, prod.fingerprint());
        let cell = format!("foreign annotation, title {title:?}");
        let _ = block_on(finish(&settings(), &w.cluster, &w.gh, &no_progress));
        assert_live_registered_and_kept(&w, &[prod.fingerprint()], &cell);
        // The slot's own old key is still retired.
        assert!(
            !registered_fingerprints(&w).contains(&w.old.fingerprint().to_string()),
            "{cell}"
        );
    }
}

// Was: naming the pending key in the annotation made it "the previous one": --finish deleted the
// key that the committed GitOps file carries, and Flux then applied a key GitHub no longer had.
#[test]
fn a_previous_fingerprint_annotation_naming_the_pending_key_does_not_get_it_deleted() {
    let w = world(vec![]);
    let done = block_on(rotate_gitops(
        &settings(),
        &w.cluster,
        &w.gh,
        |_: &NewKey<'_>| Ok(()),
        &no_progress,
    ))
    .unwrap();
    annotate_previous(&w, &done.new_fingerprint);
    let r = block_on(finish(&settings(), &w.cluster, &w.gh, &no_progress));
    assert_live_registered_and_kept(
        &w,
        &[w.old.fingerprint(), &done.new_fingerprint],
        "annotation names the pending key",
    );
    assert_eq!(r.unwrap_err().exit_code(), 2);
}

// Was: the live key re-registered (a higher id) made the pending key look older: --finish
// deleted it.
#[test]
fn finish_orders_keys_by_what_sealkey_recorded_not_by_github_ids() {
    let w = world(vec![]);
    let done = block_on(rotate_gitops(
        &settings(),
        &w.cluster,
        &w.gh,
        |_: &NewKey<'_>| Ok(()),
        &no_progress,
    ))
    .unwrap();
    // The live key is deleted and registered again by hand: it gets a higher id.
    {
        let mut keys = w.gh.keys.borrow_mut();
        let mut live = keys.iter().find(|k| k.id == 99).unwrap().clone();
        keys.retain(|k| k.id != 99);
        live.id = 5000;
        keys.push(live);
    }
    let r = block_on(finish(&settings(), &w.cluster, &w.gh, &no_progress));
    assert_live_registered_and_kept(
        &w,
        &[w.old.fingerprint(), &done.new_fingerprint],
        "reversed ids",
    );
    assert_eq!(r.unwrap_err().exit_code(), 2);
    // And --apply over it still sees the pending rotation.
    let e = apply_rotation(&w).unwrap_err();
    assert_eq!(e.exit_code(), 2, "{e}");
    assert_live_registered_and_kept(
        &w,
        &[w.old.fingerprint(), &done.new_fingerprint],
        "reversed ids, then --apply",
    );
}

// Was: the slot named the cluster by its context name, `default` for every in-pod run and k3s:
// rotating cluster B deleted cluster A's live key. Now the slot carries kube-system's UID, and
// a key titled the old way is never deleted for its title alone (it may be the other cluster's).
#[test]
fn clusters_named_alike_keep_apart_by_identity_and_old_titles_are_never_deleted_for_their_title() {
    let w = world(vec![]);
    // Cluster A's live keys for a Secret of the same namespace and name.
    let a_legacy =
        foreign_key_with_id(&w, "sealkey kind-test/dev/airflow-ssh-secret 2026-01-02", 7);
    let a_id = foreign_key_with_id(
        &w,
        "sealkey kind-test#aaaaaaaa/dev/airflow-ssh-secret 2026-12-01T00:00:00Z",
        8,
    );
    let mut s = settings();
    s.context =
        crate::github::title::cluster_part("kind-test", Some("bbbbbbbb-0000-4000-8000-0000"));
    let a = [a_legacy.fingerprint(), a_id.fingerprint()];
    // --apply: B's old key goes (the run read it from B's Secret), A's keys stay.
    let done = block_on(rotate_in_cluster(&s, &w.cluster, &w.gh, &no_progress)).unwrap();
    assert_live_registered_and_kept(&w, &a, "B --apply");
    assert!(!registered_fingerprints(&w).contains(&w.old.fingerprint().to_string()));
    // Titles order a slot's keys to the millisecond; equal moments count as pending (kept).
    std::thread::sleep(Duration::from_millis(5));
    // --gitops, the file applied, --finish: B's previous key goes, A's keys stay.
    let written: RefCell<Option<Value>> = RefCell::default();
    let next = block_on(rotate_gitops(
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
    *w.cluster.secret.borrow_mut() = written.borrow().clone();
    let fin = block_on(finish(&s, &w.cluster, &w.gh, &no_progress)).unwrap();
    assert_live_registered_and_kept(&w, &a, "B --gitops, --finish");
    let fps = registered_fingerprints(&w);
    assert!(!fps.contains(&done.new_fingerprint), "{fps:?}");
    assert!(fps.contains(&next.new_fingerprint));
    assert_eq!(fin.deleted.len(), 1);
    // A's old-style title is named as left alone, never deleted.
    assert!(
        fin.left_alone.iter().any(|k| k.id == 7),
        "{:?}",
        fin.left_alone
    );
}
