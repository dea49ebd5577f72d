"""A stand-in for the External Secrets Operator's reconcile loop, for tests/aws_rotate.rs.

Usage: fake_eso.py KUBE_URL NAMESPACE PAUSEFILE [--lifetime SECONDS]

Polls the ExternalSecrets of NAMESPACE on the Kubernetes stand-in every 0.2 s. On first sight,
and whenever the `force-sync` annotation changes (as ESO does), it reads each `spec.data` entry's
remoteRef (key, property) from Secrets Manager with boto3 (AWSCURRENT; AWS_ENDPOINT_URL points at
moto), renders `spec.target.template` (`{{ index . "KEY" }}` only, what sealkey emits, in data and metadata as ESO's v2 engine does) and writes
the target Secret (POST, or merge PATCH when it exists). While PAUSEFILE exists it syncs nothing
(an ESO that is down). Exits by itself after --lifetime seconds.
"""
import argparse
import base64
import json
import os
import re
import time
import urllib.error
import urllib.request

import boto3


def req(url, method="GET", body=None, ctype="application/json"):
    data = json.dumps(body).encode() if body is not None else None
    r = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": ctype})
    try:
        with urllib.request.urlopen(r, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, {}


def sync(kube, ns, es, sm):
    values = {}
    for d in es["spec"].get("data", []):
        ref = d["remoteRef"]
        doc = json.loads(sm.get_secret_value(SecretId=ref["key"])["SecretString"])
        values[d["secretKey"]] = doc[ref["property"]] if "property" in ref else json.dumps(doc)
    target = es["spec"]["target"]
    tpl = target.get("template", {})
    data = {}
    for k, t in tpl.get("data", {}).items():
        m = re.fullmatch(r'\{\{ index \. "([^"]+)" \}\}', t)
        data[k] = base64.b64encode(values[m.group(1)].encode()).decode()
    meta = {"name": target.get("name", es["metadata"]["name"]), "namespace": ns}
    def render(t):
        m = re.fullmatch(r'\{\{ index \. "([^"]+)" \}\}', t)
        return values[m.group(1)] if m else t
    for k in ("labels", "annotations"):
        if k in tpl.get("metadata", {}):
            meta[k] = {n: render(v) for n, v in tpl["metadata"][k].items()}
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": meta,
              "type": tpl.get("type", "Opaque"), "data": data}
    base = f"{kube}/api/v1/namespaces/{ns}/secrets"
    status, _ = req(f"{base}/{meta['name']}")
    if status == 200:
        req(f"{base}/{meta['name']}", "PATCH", {"metadata": {"annotations": meta.get("annotations", {})}, "data": data},
            "application/merge-patch+json")
    else:
        req(base, "POST", secret)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kube")
    ap.add_argument("namespace")
    ap.add_argument("pausefile")
    ap.add_argument("--lifetime", type=float, default=120.0)
    args = ap.parse_args()
    sm = boto3.client("secretsmanager")
    seen = {}
    end = time.time() + args.lifetime
    while time.time() < end:
        if not os.path.exists(args.pausefile):
            status, lst = req(f"{args.kube}/apis/external-secrets.io/v1/namespaces/{args.namespace}/externalsecrets")
            for es in lst.get("items", []) if status == 200 else []:
                name = es["metadata"]["name"]
                mark = (es["metadata"].get("annotations") or {}).get("force-sync", "")
                if seen.get(name) != mark:
                    try:
                        sync(args.kube, args.namespace, es, sm)
                        seen[name] = mark
                    except Exception as e:  # keep reconciling, as ESO does
                        print(f"sync {name}: {e}", flush=True)
        time.sleep(0.2)


if __name__ == "__main__":
    main()
