#!/usr/bin/env bash
# `sealkey audit` benchmarks for docs/benchmarks.md ("## Audit"): one run, same machine, same
# corpus (written by benches/audit_corpus_gen.rs): sealkey's full rule set vs checkov's
# CKV_K8S_35 at 1,000 files, then both corpora scored against their ground truth, then sealkey
# alone at 1x (1,000 files) and 10x (10,000 files), JSON and SARIF, for linear time and flat
# memory (peak RSS from `/usr/bin/time -v`).
# Usage: benches/audit.sh [RUNS]   (needs: cargo build --release; hyperfine; checkov is installed
# from PyPI into target/checkov-venv when it is not there)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
checkov_runs=${CHECKOV_RUNS:-2}
bin=$PWD/target/release/sealkey
[ -x "$bin" ] || { echo "build first: cargo build --release" >&2; exit 2; }
command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install hyperfine)" >&2; exit 2; }
checkov=${CHECKOV:-$PWD/target/checkov-venv/bin/checkov}
if [ ! -x "$checkov" ]; then
  python3 -m venv "$PWD/target/checkov-venv"
  "$PWD/target/checkov-venv/bin/pip" install -q --disable-pip-version-check checkov
fi
export BC_SKIP_MAPPING=TRUE  # no network here: without these checkov waits on timeouts
work=${AUDIT_BENCH_DIR:-$(mktemp -d)}
trap 'rm -rf "$work"' EXIT

corpus() { # dir files
  cargo bench -q --bench audit_corpus_gen -- "$1" "$2" 7
}

score() { # dir -> recall per rule and false positives against DIR.truth.json (as tests/audit_corpus.rs)
  "$bin" audit "$1" --format json --fail-on none > "$work/score.json"
  python3 - "$work/score.json" "$1.truth.json" <<'PY'
import json, sys, collections
fields = ("rule", "file", "line", "kind", "name", "namespace", "container", "env", "secret", "key")
key = lambda f: tuple(f.get(k) or (0 if k == "line" else None) for k in fields)
report, truth = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
got = [key(f) for f in report["findings"]]
want = {key(f) for f in truth["findings"]}
per_rule = collections.Counter(k[0] for k in want)
hit = collections.Counter(k[0] for k in want & set(got))
fp = len(set(got) - want)
print(f"score {sys.argv[2]}: {len(got)} findings ({len(got) - len(set(got))} twice), planted {len(want)}, "
      f"recall {sum(hit.values())}/{len(want)}, false positives {fp}, input errors {len(report['errors'])}; "
      f"unconsumedSecrets {report['unconsumedSecrets']}, summary rows {len(report['summary'])}")
print("  per rule (recalled/planted): " + ", ".join(f"{r} {hit[r]}/{n}" for r, n in sorted(per_rule.items())))
PY
}

peak() { # cmd... -> prints "wall_s peak_KiB" (GNU time -v: "Maximum resident set size (kbytes)")
  /usr/bin/time -v -o "$work/time.txt" "$@" >/dev/null 2>&1 || true
  awk -F': ' '/Elapsed \(wall clock\)/{w=$2} /Maximum resident set size/{m=$2} END{print w, m}' "$work/time.txt"
}

echo "checkov: $("$checkov" --version 2>/dev/null)"
echo "## corpus 1x: 1000 files"
corpus "$work/c1k" 1000
echo "## sealkey vs checkov, 1000 files"
hyperfine -N --style basic --warmup 1 --runs "$runs" --export-json "$work/sealkey-1k.json" \
  "$bin audit $work/c1k --format json --fail-on none" | tail -n 4
hyperfine -N --style basic --warmup 0 --runs "$checkov_runs" --ignore-failure \
  --export-json "$work/checkov-1k.json" \
  "$checkov -d $work/c1k --framework kubernetes --check CKV_K8S_35 -o json --quiet --skip-download" | tail -n 4
echo "checkov 1000 files (wall, peak RSS KiB): $(peak "$checkov" -d "$work/c1k" --framework kubernetes --check CKV_K8S_35 -o json --quiet --skip-download)"
"$checkov" -d "$work/c1k" --framework kubernetes --check CKV_K8S_35 -o json --quiet --skip-download > "$work/checkov.json" 2>/dev/null || true
python3 - "$work/checkov.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d = d if isinstance(d, list) else [d]
failed = sum(len(r.get("results", {}).get("failed_checks", [])) for r in d)
print(f"checkov CKV_K8S_35 failed checks: {failed}")
PY
"$bin" audit "$work/c1k" --format json --fail-on none | python3 -c 'import json,sys; d=json.load(sys.stdin); f=d["findings"]; print("sealkey findings:", len(f), "of which SK001/SK002:", sum(x["rule"] in ("SK001","SK002") for x in f))'
python3 - "$work/sealkey-1k.json" "$work/checkov-1k.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))["results"][0]["mean"]
c = json.load(open(sys.argv[2]))["results"][0]["mean"]
print(f"sealkey mean {s:.3f} s, checkov mean {c:.1f} s: sealkey takes {100 * s / c:.2f} % of checkov's wall time")
PY

echo "## corpus 10x: 10000 files"
corpus "$work/c10k" 10000
score "$work/c1k"
score "$work/c10k"
for files in 1k 10k; do
  for format in json sarif; do
    hyperfine -N --style basic --warmup 1 --runs "$runs" \
      "$bin audit $work/c$files --format $format --fail-on none" | grep -E "Time|Range"
    for i in 1 2 3; do
      echo "sealkey c$files $format run $i (wall, peak RSS KiB): $(peak "$bin" audit "$work/c$files" --format "$format" --fail-on none)"
    done
  done
done
