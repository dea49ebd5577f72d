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
