#!/usr/bin/env bash
# Sealing benchmarks for docs/benchmarks.md "## Sealing": whole-process wall time with hyperfine,
# release build, peers in the same run.
#   - 1,000 Secrets in one stream: --seal sops, --seal sealed-secrets (RSA-4096 cert), --seal age
#   - sealkey seal --seal age vs the age CLI (`age -a -r`), same input, same run
# usage: cargo build --release && benches/seal.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-10}"
bin="$PWD/target/release/sealkey"
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
echo "== 1,000 Secrets in one stream ($(wc -c < secrets-1000.yaml) bytes)"
hyperfine -w 2 -r "$runs" --export-markdown stream.md \
  -n "sealkey seal --seal sops" "$bin seal --seal sops --seal-to $recipient < secrets-1000.yaml > out.sops" \
  -n "sealkey seal --seal sealed-secrets" "$bin seal --seal sealed-secrets --cert cert.pem < secrets-1000.yaml > out.ss" \
  -n "sealkey seal --seal age" "$bin seal --seal age --seal-to $recipient < secrets-1000.yaml > out.age" \
  -n "age -a -r" "age -a -r $recipient < secrets-1000.yaml > out2.age"
cat stream.md
echo "== one Secret ($(wc -c < secret-1.yaml) bytes)"
hyperfine -w 3 -r "$((runs * 5))" --export-markdown one.md \
  -n "sealkey seal --seal age" "$bin seal --seal age --seal-to $recipient < secret-1.yaml > o.age" \
  -n "age -a -r" "age -a -r $recipient < secret-1.yaml > o2.age" \
  -n "sealkey seal --seal sops" "$bin seal --seal sops --seal-to $recipient < secret-1.yaml > o.sops"
cat one.md
# Sanity: the outputs open.
age -d -i id.TEST-ONLY.txt out.age | cmp - secrets-1000.yaml
"$bin" unseal --identity id.TEST-ONLY.txt out.sops | grep -c '^kind: Secret' | grep -qx 1000
echo "outputs verified"
