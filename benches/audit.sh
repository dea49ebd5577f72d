#!/usr/bin/env bash
# `sealkey audit` benchmarks for docs/benchmarks.md ("## Audit"): one run, same machine, same
# corpus (written by benches/audit_corpus_gen.rs), sealkey's full rule set vs checkov's CKV_K8S_35,
# then sealkey alone at ~10,000 and ~100,000 workloads for linear time and flat memory.
# Usage: benches/audit.sh [RUNS]   (needs: cargo build --release; hyperfine; checkov in .venv)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
bin=$PWD/target/release/sealkey
checkov=${CHECKOV:-$PWD/.venv/bin/checkov}
[ -x "$bin" ] || { echo "build first: cargo build --release" >&2; exit 2; }
command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install hyperfine)" >&2; exit 2; }
[ -x "$checkov" ] || { echo "needs checkov: python3 -m venv .venv && .venv/bin/pip install checkov" >&2; exit 2; }
export BC_SKIP_MAPPING=TRUE  # no network here: without these checkov waits on timeouts
work=${AUDIT_BENCH_DIR:-$(mktemp -d)}
trap 'rm -rf "$work"' EXIT

corpus() { # dir files
  cargo bench -q --bench audit_corpus_gen -- "$1" "$2" 7
}

peak_rss_kb() { # cmd... -> prints "wall_s peak_kb"
  /usr/bin/time -f "%e %M" -o "$work/time.txt" "$@" >/dev/null 2>&1 || true
  cat "$work/time.txt"
}

echo "## corpus 1000 files"
corpus "$work/c1k" 1000
hyperfine -N --style basic --warmup 1 --runs "$runs" --ignore-failure \
  --export-json "$work/c1k.json" \
  "$bin audit $work/c1k --format json --fail-on none" \
  "$checkov -d $work/c1k --framework kubernetes --check CKV_K8S_35 -o json --quiet --skip-download" | tail -n 20
echo "sealkey 1000 files (wall s, peak RSS KiB): $(peak_rss_kb "$bin" audit "$work/c1k" --format json --fail-on none)"
echo "sealkey 1000 files, 1 thread:              $(peak_rss_kb "$bin" audit "$work/c1k" --format json --fail-on none --threads 1)"
echo "checkov 1000 files (wall s, peak RSS KiB): $(peak_rss_kb "$checkov" -d "$work/c1k" --framework kubernetes --check CKV_K8S_35 -o json --quiet --skip-download)"
"$checkov" -d "$work/c1k" --framework kubernetes --check CKV_K8S_35 -o json --quiet --skip-download > "$work/checkov.json" 2>/dev/null || true
python3 - "$work/checkov.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d = d if isinstance(d, list) else [d]
failed = sum(len(r.get("results", {}).get("failed_checks", [])) for r in d)
print(f"checkov CKV_K8S_35 failed checks: {failed}")
PY
"$bin" audit "$work/c1k" --format json --fail-on none | python3 -c 'import json,sys; d=json.load(sys.stdin); f=d["findings"]; print("sealkey findings:", len(f), "of which SK001/SK002:", sum(x["rule"] in ("SK001","SK002") for x in f))'

for files in 3500 35000; do
  echo "## corpus $files files"
  corpus "$work/c$files" "$files"
  hyperfine -N --style basic --warmup 1 --runs "$runs" "$bin audit $work/c$files --format json --fail-on none" | tail -n 4
  echo "sealkey $files files (wall s, peak RSS KiB): $(peak_rss_kb "$bin" audit "$work/c$files" --format json --fail-on none)"
  rm -rf "$work/c$files"
done
