#!/usr/bin/env bash
# `sealkey audit --cluster` at growing cluster sizes against kmock (tests/support/kube_standin.py
# --preload --list-log, pages of 500): wall time and sealkey's peak RSS, for docs/benchmarks.md.
# Usage: benches/audit_cluster.sh [PODS...]   (needs: cargo build --release; kmock in .venv)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$PWD/target/release/sealkey
py=$PWD/.venv/bin/python
[ -x "$bin" ] || { echo "build first: cargo build --release" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"; [ -n "${server_pid:-}" ] && kill "$server_pid" 2>/dev/null || true' EXIT
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(10000 30000)
for pods in "${sizes[@]}"; do
  "$py" - "$pods" "$work/objects.json" <<'PY'
import json, sys
n = int(sys.argv[1])
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
json.dump(objs, open(sys.argv[2], "w"))
PY
  rm -f "$work/port"
  "$py" tests/support/kube_standin.py "$work/port" --preload "$work/objects.json" \
    --list-log "$work/requests.jsonl" --lifetime 3600 &
  server_pid=$!
  for _ in $(seq 1 120); do [ -s "$work/port" ] && break; sleep 0.5; done
  port=$(cat "$work/port")
  cat > "$work/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters: [{name: k, cluster: {server: "http://127.0.0.1:$port"}}]
contexts: [{name: k, context: {cluster: k, user: u}}]
current-context: k
users: [{name: u, user: {token: not-a-real-token}}]
KC
  KUBECONFIG=$work/kubeconfig /usr/bin/time -f "%e %M" -o "$work/time.txt" \
    "$bin" audit --cluster --format json --fail-on none > "$work/out.json"
  findings=$("$py" -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["findings"]))' "$work/out.json")
  pages=$(grep -c '"/api/v1/pods"' "$work/requests.jsonl")
  echo "cluster $pods pods: (wall s, peak RSS KiB) $(cat "$work/time.txt"); $findings findings; $pages pod pages"
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=
done
