#!/usr/bin/env bash
# Sealing benchmarks for docs/benchmarks.md "## Sealing": whole-process wall time with hyperfine,
# release build, peers in the same run.
#   - 1,000 Secrets in one stream: --seal sops, --seal sealed-secrets (RSA-4096 cert), --seal age
#   - sealkey seal --seal age vs the age CLI (`age -a -r`), same input, same run
# usage: cargo build --release && benches/seal.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-10}"
here="$PWD"
bin="$here/target/release/sealkey"
py="$here/.venv/bin/python"   # scripts/install-test-deps installs kubesealpy there
[ -x "$bin" ] || { echo "build first: cargo build --release" >&2; exit 2; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

age-keygen -o "$work/id.TEST-ONLY.txt" 2>/dev/null
recipient="$(age-keygen -y "$work/id.TEST-ONLY.txt")"
openssl req -x509 -nodes -days 30 -subj /CN=sealed-secret -newkey rsa:4096 \
  -keyout "$work/ss-key.TEST-ONLY.pem" -out "$work/cert.pem" 2>/dev/null

# 1,000 Secrets shaped like sealkey's git-sync Secret (a key-sized value plus known_hosts), and one.
python3 - "$work" <<'PY'
import base64, os, sys
work = sys.argv[1]
kh = base64.b64encode(b"github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n").decode()
def secret(i):
    key = base64.b64encode(os.urandom(300)).decode()
    return (f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: git-creds-{i}\n  namespace: bench\n"
            f"type: Opaque\ndata:\n  ssh: {key}\n  known_hosts: {kh}\n")
with open(f"{work}/secrets-1000.yaml", "w") as f:
    f.write("---\n".join(secret(i) for i in range(1000)))
with open(f"{work}/secret-1.yaml", "w") as f:
    f.write(secret(0))
PY

cd "$work"
# stdin needs a shell redirect (hyperfine 1.15 has no --input); hyperfine subtracts the shell's
# start-up time it measures, the same for every command.
hyperfine -w 2 -r "$runs" --style none --export-json stream.json \
  -n "sealkey seal --seal sops" "$bin seal --seal sops --seal-to $recipient < secrets-1000.yaml > out.sops" \
  -n "sealkey seal --seal sealed-secrets" "$bin seal --seal sealed-secrets --cert cert.pem < secrets-1000.yaml > out.ss" \
  -n "sealkey seal --seal age" "$bin seal --seal age --seal-to $recipient < secrets-1000.yaml > out.age" \
  -n "age -a -r" "age -a -r $recipient < secrets-1000.yaml > out2.age" \
  -n "kubesealpy (PyPI, OpenSSL RSA)" "$py $here/benches/kubesealpy_seal.py cert.pem < secrets-1000.yaml > out2.ss" >/dev/null
hyperfine -w 3 -r "$((runs * 5))" --style none --export-json one.json \
  -n "sealkey seal --seal age" "$bin seal --seal age --seal-to $recipient < secret-1.yaml > o.age" \
  -n "age -a -r" "age -a -r $recipient < secret-1.yaml > o2.age" \
  -n "sealkey seal --seal sops" "$bin seal --seal sops --seal-to $recipient < secret-1.yaml > o.sops" >/dev/null
# One Secret is too short for hyperfine's shell correction (< 5 ms): time 100 invocations in a
# loop instead, the same loop for both, and divide.
cat > loop-sealkey.sh <<SH
for i in \$(seq 100); do $bin seal --seal age --seal-to $recipient < secret-1.yaml > o.age; done
SH
cat > loop-age.sh <<SH
for i in \$(seq 100); do age -a -r $recipient < secret-1.yaml > o2.age; done
SH
hyperfine -N -w 1 -r "$runs" --style none --export-json loop.json \
  -n "sealkey seal --seal age" "bash loop-sealkey.sh" -n "age -a -r" "bash loop-age.sh" >/dev/null
python3 - loop.json <<'PY'
import json, sys
res = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
print("\none Secret, 100 invocations in a bash loop, per invocation\n\n| command | median wall | mean user CPU | runs of 100 |\n|---|---|---|---|")
for name, r in res.items():
    print(f"| `{name}` | {r['median'] * 10:.2f} ms | {r['user'] * 10:.2f} ms | {len(r['times'])} |")
a, b = res["sealkey seal --seal age"], res["age -a -r"]
print(f"\nratio sealkey age / age CLI: wall {a['median'] / b['median']:.2f}, user CPU {a['user'] / b['user']:.2f}")
PY
python3 - stream.json one.json <<'PY'
import json, sys
def ms(s):
    return f"{s * 1000:.1f} ms" if s < 1 else f"{s:.2f} s"
for path, title in zip(sys.argv[1:], ["1,000 Secrets in one stream (~650 kB)", "one Secret (~650 bytes)"]):
    res = {r["command"]: r for r in json.load(open(path))["results"]}
    print(f"\n{title}\n\n| command | median wall | mean user CPU | runs |\n|---|---|---|---|")
    for name, r in res.items():
        print(f"| `{name}` | {ms(r['median'])} | {ms(r['user'])} | {len(r['times'])} |")
    a, b = res["sealkey seal --seal age"], res["age -a -r"]
    print(f"\nratio sealkey age / age CLI: wall {a['median'] / b['median']:.2f}, user CPU {a['user'] / b['user']:.2f}")
    k = res.get("kubesealpy (PyPI, OpenSSL RSA)")
    if k:
        s = res["sealkey seal --seal sealed-secrets"]
        print(f"ratio sealkey sealed-secrets / kubesealpy: wall {s['median'] / k['median']:.2f}, user CPU {s['user'] / k['user']:.2f}")
PY
# Sanity: the outputs open.
age -d -i id.TEST-ONLY.txt out.age | cmp - secrets-1000.yaml
"$bin" unseal --identity id.TEST-ONLY.txt out.sops | grep -c '^kind: Secret' | grep -qx 1000
echo "outputs verified (age -d, sealkey unseal)"
