#!/usr/bin/env bash
# Whole-process benchmarks for issue "core pipeline": sealkey vs ssh-keygen (same run, same
# machine), medians of N runs with hyperfine. Prints a Markdown table for docs/benchmarks.md.
# Usage: benches/keygen.sh [RUNS] [RSA_RUNS]   (needs a release build: cargo build --release)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20}
rsa_runs=${2:-10}
bin=target/release/sealkey
[ -x "$bin" ] || { echo "build first: cargo build --release" >&2; exit 2; }
command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install hyperfine)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
recipient=$(age-keygen 2>/dev/null | sed -n 's/^# public key: //p')

bench() { # name runs cmd...
  local name=$1 n=$2; shift 2
  hyperfine -N --style none --warmup 2 --runs "$n" --prepare "rm -f $work/k $work/k.pub" \
    --export-json "$work/$name.json" "$@" >/dev/null
}

bench ed25519 "$runs" \
  "$bin keygen --key-type ed25519" \
  "ssh-keygen -t ed25519 -N '' -q -f $work/k"
bench create "$runs" \
  "$bin -q create --repo acme/dags --namespace dev --emit helmrelease --seal-to $recipient" \
  "sh -c 'ssh-keygen -t ed25519 -N \"\" -q -f $work/k && age -e -a -r $recipient -o /dev/null $work/k'"
bench rsa3072 "$rsa_runs" \
  "$bin keygen --key-type rsa-3072" \
  "ssh-keygen -t rsa -b 3072 -N '' -q -f $work/k"
bench rsa4096 "$rsa_runs" \
  "$bin keygen --key-type rsa-4096" \
  "ssh-keygen -t rsa -b 4096 -N '' -q -f $work/k"

python3 - "$work" <<'PY'
import json, sys, statistics, os
w = sys.argv[1]
def med(name, i):
    r = json.load(open(os.path.join(w, name + ".json")))["results"][i]
    return statistics.median(r["times"]), len(r["times"]), r["command"]
print("| measurement | sealkey median | peer | peer median | ratio (sealkey / peer) | runs |")
print("|---|---|---|---|---|---|")
for name, label, peer in [("ed25519", "keygen ed25519", "ssh-keygen -t ed25519"),
                          ("create", "create --emit helmrelease --seal age (end to end)", "by hand: ssh-keygen + age -e (writes the key to disk)"),
                          ("rsa3072", "keygen rsa-3072", "ssh-keygen -t rsa -b 3072"),
                          ("rsa4096", "keygen rsa-4096", "ssh-keygen -t rsa -b 4096")]:
    s, n, _ = med(name, 0); p, _, _ = med(name, 1)
    fmt = lambda t: f"{t*1000:.1f} ms" if t < 1 else f"{t:.2f} s"
    print(f"| {label} | {fmt(s)} | {peer} | {fmt(p)} | {s/p:.2f} | {n} |")
PY
