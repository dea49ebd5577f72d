//! Writes an audit benchmark corpus: `cargo bench --bench audit_corpus_gen -- DIR FILES [SEED]`.
//! Prints the ground truth's counts; the full ground truth goes to `DIR.truth.json`.
//! The numbers in docs/benchmarks.md ("## Audit") were measured on corpora written by this.

#[path = "../tests/support/audit_corpus.rs"]
mod corpus;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.first().is_none_or(|a| a.starts_with('-')) {
        // `cargo test --all-targets` runs bench binaries with harness flags: nothing to write.
        eprintln!("usage: cargo bench --bench audit_corpus_gen -- DIR FILES [SEED]");
        return;
    }
    let (Some(dir), Some(files)) = (args.first(), args.get(1).and_then(|n| n.parse().ok())) else {
        eprintln!("usage: cargo bench --bench audit_corpus_gen -- DIR FILES [SEED]");
        std::process::exit(2);
    };
    let seed = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(7);
    let truth = corpus::generate(std::path::Path::new(dir), files, seed);
    std::fs::write(
        format!("{dir}.truth.json"),
        serde_json::to_vec(&truth).expect("truth serializes"),
    )
    .expect("write truth");
    println!(
        "{} files, {} objects, {} workloads, {} planted findings",
        truth.files,
        truth.objects,
        truth.workloads,
        truth.findings.len()
    );
}
