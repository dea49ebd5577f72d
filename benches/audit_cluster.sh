#!/usr/bin/env bash
# `sealkey audit --cluster` at growing cluster sizes against the real kube-apiserver + etcd
# (scripts/dev-cluster; pages of 500): wall time and sealkey's peak RSS, for docs/benchmarks.md.
# The Pods are created as objects (no kubelet runs them), about 25 ms each on 2 vCPUs.
# Usage: benches/audit_cluster.sh [PODS...]   (needs: cargo build --release; the judges built by
# scripts/install-test-deps)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${SEALKEY_BIN:-$PWD/target/release/sealkey}
kubectl=$PWD/.judges/bin/kubectl
[ -x "$bin" ] || { echo "build first: cargo build --release" >&2; exit 2; }
[ -x "$kubectl" ] || { echo "build the judges first: scripts/install-test-deps" >&2; exit 2; }
work=$(mktemp -d)
trap 'scripts/dev-cluster stop "$work/cluster" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1000 3000)
for pods in "${sizes[@]}"; do
  scripts/dev-cluster stop "$work/cluster" >/dev/null 2>&1 || true
  rm -rf "$work/cluster"
  scripts/dev-cluster start "$work/cluster" 2>/dev/null
  export KUBECONFIG=$work/cluster/kubeconfig
  for i in $(seq 0 6); do "$kubectl" create namespace "team-$i" >/dev/null; done
  python3 - "$pods" "$work/chunks" <<'PY'
import json, os, sys
n, out = int(sys.argv[1]), sys.argv[2]
os.makedirs(out, exist_ok=True)
objs = []
for i in range(n):
    ns = f"team-{i % 7}"
    c = {"name": "app", "image": "example/app:1",
         "env": [{"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": f"db-{i % 40}", "key": "password"}}},
                 {"name": "DB_PASSWORD_FILE", "value": "/run/secrets/db/password"}],
         "envFrom": [{"secretRef": {"name": f"app-{i % 40}"}}],
         "volumeMounts": [{"name": "key", "mountPath": "/etc/git-secret/ssh", "subPath": "ssh"}]}
    objs.append({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p{i}", "namespace": ns},
                 "spec": {"volumes": [{"name": "key", "secret": {"secretName": f"git-ssh-{i % 40}"}}],
                          "containers": [c]}})
for k in range(0, n, 250):
    json.dump({"apiVersion": "v1", "kind": "List", "items": objs[k:k + 250]},
              open(os.path.join(out, f"{k:07d}.json"), "w"))
PY
  ls "$work/chunks"/*.json | xargs -P 4 -n 1 "$kubectl" create -o name -f > /dev/null
  rm -rf "$work/chunks"
  /usr/bin/time -f "%e %M" -o "$work/time.txt" \
    "$bin" audit --cluster --format json --fail-on none > "$work/out.json"
  findings=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["findings"]))' "$work/out.json")
  pages=$(python3 -c '
import json, sys
n = 0
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e.get("stage") == "ResponseComplete" and e.get("verb") == "list" and e["requestURI"].startswith("/api/v1/pods"):
        n += 1
print(n)' "$work/cluster/audit.log")
  echo "cluster $pods pods: (wall s, peak RSS KiB) $(cat "$work/time.txt"); $findings findings; $pages pod pages"
done
