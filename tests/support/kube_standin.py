#!/usr/bin/env python3
"""The one Kubernetes API stand-in for sealkey's tests, on 127.0.0.1 (tests/support/kmock.rs
starts it; every cluster test goes through that).

Usage: kube_standin.py PORTFILE [--mode emulator|kubectl|discovery] [--seed FILE.json]
                       [--preload FILE.json] [--list-log LOG.jsonl] [--lifetime SECONDS]

It writes the port it listens on to PORTFILE (atomically) once ready, and serves until killed or
until --lifetime seconds have passed (so a crashed test leaves nothing running).

--mode emulator (default): kmock's stateful KubernetesEmulator (PyPI kmock, in the repo's .venv)
  with its bundled resource list (core/v1, apps/v1, batch/v1, ...). kmock's limits (see
  /work/shared/reference/test-rigs.md): no server-side-apply create (404, so sealkey falls back to
  POST), no resourceVersion, PUT unsupported, dryRun ignored.
  --seed: a JSON list of objects (with metadata.namespace) POSTed before listening, as if created.
  --preload: a JSON list stored straight into the emulator (no POST: fast for 10,000 Pods).
  --list-log: adds what a real API server does with `limit` and `continue` (pages in a stable
    order, an opaque token), refuses pages larger than 500 with 400 (a real server would not, but
    the audit test wants to know), and logs every list request (path, limit, continue) as JSON
    lines to this file. Without it kmock serves lists whole.
--mode kubectl: the emulator behind a small aiohttp shim so that the real kubectl can `apply` to
  it. kubectl rejects two of kmock 0.8's answers: core discovery says groupVersion "/v1" instead
  of "v1", and list responses lack kind/apiVersion; and kmock cannot create cluster-scoped core
  objects (a Namespace POST fails inside it). The shim fixes those two answers, stores Namespaces
  itself, and passes everything else through.
--mode discovery: no kmock, standard library only: discovery (which resources exist, namespaced
  or not, including HelmRelease and SealedSecret) and a 404 for every object, which is all that
  `kubectl apply --dry-run=client` asks.
"""
import argparse
import asyncio
import base64
import http.server
import json
import os
import sys
import threading

# kind -> (api prefix, plural), for seeding and preloading.
KINDS = {
    "Secret": ("v1", "secrets"),
    "ConfigMap": ("v1", "configmaps"),
    "Pod": ("v1", "pods"),
    "Deployment": ("apps/v1", "deployments"),
    "StatefulSet": ("apps/v1", "statefulsets"),
    "DaemonSet": ("apps/v1", "daemonsets"),
    "ReplicaSet": ("apps/v1", "replicasets"),
    "Job": ("batch/v1", "jobs"),
    "CronJob": ("batch/v1", "cronjobs"),
}
MAX_LIMIT = 500


def write_port(portfile: str, port: int) -> None:
    with open(portfile + ".tmp", "w") as f:
        f.write(str(port))
    os.replace(portfile + ".tmp", portfile)


# --- emulator and kubectl modes (kmock) --------------------------------------------------------


def make_emulator(list_log, eso=False):
    import kmock

    class PaginatingEmulator(kmock.KubernetesEmulator):
        async def _serve_list(self, request):
            page = await super()._serve_list(request)
            params = request.params
            limit = params.get("limit")
            token = params.get("continue")
            list_log.write(json.dumps({"path": str(request.url.path), "limit": limit, "continue": token}) + "\n")
            list_log.flush()
            items = page["items"]
            if limit is None:
                return page
            limit = int(limit)
            if limit > MAX_LIMIT or limit < 1:
                raise kmock.KubernetesError(400, "BadRequest", f"limit {limit} is above {MAX_LIMIT}")
            start = int(base64.b64decode(token).decode()) if token else 0
            chunk = items[start:start + limit]
            meta = {"resourceVersion": "1"}
            if start + limit < len(items):
                meta["continue"] = base64.b64encode(str(start + limit).encode()).decode()
                meta["remainingItemCount"] = len(items) - start - limit
            return {"kind": "List", "apiVersion": "v1", "metadata": meta, "items": chunk}

    emulator = PaginatingEmulator() if list_log else kmock.KubernetesEmulator()
    emulator.resources.load_bundled()
    if eso:
        # The External Secrets Operator's kinds, as if its CRDs were installed.
        verbs = {"get", "list", "watch", "create", "update", "patch", "delete"}
        for plural, kind, namespaced in [("externalsecrets", "ExternalSecret", True),
                                         ("secretstores", "SecretStore", True),
                                         ("clustersecretstores", "ClusterSecretStore", False)]:
            emulator.resources[f"external-secrets.io/v1/{plural}"] = kmock.ResourceInfo(
                kind=kind, singular=kind.lower(), namespaced=namespaced, verbs=verbs)
    return emulator


async def seed(server, path: str) -> None:
    with open(path, encoding="utf-8") as f:
        for obj in json.load(f):
            api, plural = KINDS[obj["kind"]]
            ns = obj["metadata"]["namespace"]
            prefix = "/api/v1" if api == "v1" else f"/apis/{api}"
            url = f"{prefix}/namespaces/{ns}/{plural}"
            async with server.client.post(url, json=obj) as resp:
                if resp.status >= 300:
                    sys.exit(f"seeding {url} failed: {resp.status} {await resp.text()}")


def preload(emulator, path: str) -> None:
    with open(path, encoding="utf-8") as f:
        for obj in json.load(f):
            api, plural = KINDS[obj["kind"]]
            meta = obj["metadata"]
            emulator.objects[f"{api}/{plural}", meta.get("namespace"), meta["name"]] = obj


async def kubectl_shim(upstream: str):
    """The aiohttp front that makes kmock acceptable to kubectl; returns (runner, port, session)."""
    import aiohttp
    from aiohttp import web

    session = aiohttp.ClientSession()
    namespaces = {}

    async def namespace(request: web.Request) -> web.StreamResponse:
        name = request.match_info.get("name")
        if request.method == "POST" and not name:
            obj = json.loads(await request.read())
            name = obj["metadata"]["name"]
            if name in namespaces:
                return web.json_response({"kind": "Status", "apiVersion": "v1", "code": 409,
                                          "reason": "AlreadyExists", "status": "Failure"}, status=409)
            obj.setdefault("status", {"phase": "Active"})
            namespaces[name] = obj
            return web.json_response(obj, status=201)
        if request.method == "GET" and name:
            if name in namespaces:
                return web.json_response(namespaces[name])
            return web.json_response({"kind": "Status", "apiVersion": "v1", "code": 404,
                                      "reason": "NotFound", "status": "Failure"}, status=404)
        if request.method == "GET":
            return web.json_response({"kind": "NamespaceList", "apiVersion": "v1",
                                      "items": list(namespaces.values())})
        return web.json_response({"kind": "Status", "code": 405}, status=405)

    async def proxy(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("content-type", "accept")}
        async with session.request(request.method, upstream + request.path_qs, data=body or None,
                                   headers=headers) as resp:
            data = await resp.read()
            status = resp.status
            ctype = resp.headers.get("Content-Type", "application/json")
        if ctype.startswith("application/json") and data:
            try:
                doc = json.loads(data)
            except ValueError:
                doc = None
            if isinstance(doc, dict):
                if request.path.rstrip("/") == "/api/v1" and doc.get("groupVersion") == "/v1":
                    doc["groupVersion"] = "v1"
                if request.method == "GET" and "items" in doc:
                    doc.setdefault("apiVersion", "v1")
                    doc.setdefault("kind", "List")
                data = json.dumps(doc).encode()
                ctype = "application/json"
        return web.Response(body=data, status=status, content_type=ctype.split(";")[0])

    app = web.Application()
    app.router.add_route("*", "/api/v1/namespaces", namespace)
    app.router.add_route("*", "/api/v1/namespaces/{name}", namespace)
    app.router.add_route("*", "/{tail:.*}", proxy)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, port, session


async def run_kmock(args) -> None:
    import kmock

    list_log = open(args.list_log, "w") if args.list_log else None
    emulator = make_emulator(list_log, args.eso)
    if args.preload:
        preload(emulator, args.preload)
    async with emulator, kmock.Server(emulator, host="127.0.0.1") as server:
        if args.seed:
            await seed(server, args.seed)
        if args.mode == "kubectl":
            runner, port, session = await kubectl_shim(f"http://127.0.0.1:{server.port}")
            write_port(args.portfile, port)
            try:
                await asyncio.sleep(args.lifetime)
            finally:
                await session.close()
                await runner.cleanup()
        else:
            write_port(args.portfile, server.port)
            await asyncio.sleep(args.lifetime)


# --- discovery mode (standard library only) ----------------------------------------------------

RESOURCES = {
    "v1": [("secrets", "Secret", True), ("configmaps", "ConfigMap", True), ("namespaces", "Namespace", False)],
    "apps/v1": [("deployments", "Deployment", True), ("statefulsets", "StatefulSet", True)],
    "helm.toolkit.fluxcd.io/v2": [("helmreleases", "HelmRelease", True)],
    "bitnami.com/v1alpha1": [("sealedsecrets", "SealedSecret", True)],
}
VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]


def resource_list(gv):
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
            "resources": [{"name": n, "singularName": k.lower(), "namespaced": ns, "kind": k, "verbs": VERBS}
                          for n, k, ns in RESOURCES[gv]]}


class DiscoveryHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def send(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        path = self.path.split("?")[0].rstrip("/")
        if path == "/version":
            return self.send(200, {"major": "1", "minor": "33", "gitVersion": "v1.33.0"})
        if path == "/api":
            return self.send(200, {"kind": "APIVersions", "versions": ["v1"],
                                   "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})
        if path == "/apis":
            groups = []
            for gv in RESOURCES:
                if "/" in gv:
                    g, v = gv.split("/")
                    groups.append({"name": g, "versions": [{"groupVersion": gv, "version": v}],
                                   "preferredVersion": {"groupVersion": gv, "version": v}})
            return self.send(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
        if path == "/api/v1":
            return self.send(200, resource_list("v1"))
        for gv in RESOURCES:
            if path == "/apis/" + gv:
                return self.send(200, resource_list(gv))
        self.send(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404,
                        "message": "not found"})


def run_discovery(args) -> None:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), DiscoveryHandler)
    write_port(args.portfile, srv.server_address[1])
    threading.Timer(args.lifetime, srv.shutdown).start()
    srv.serve_forever()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("portfile")
    ap.add_argument("--mode", choices=["emulator", "kubectl", "discovery"], default="emulator")
    ap.add_argument("--seed")
    ap.add_argument("--preload")
    ap.add_argument("--list-log")
    ap.add_argument("--lifetime", type=float, default=300.0)
    ap.add_argument("--eso", action="store_true", help="also serve external-secrets.io/v1 kinds")
    args = ap.parse_args()
    if args.mode == "discovery":
        if args.seed or args.preload or args.list_log:
            ap.error("--mode discovery serves no objects: no --seed, --preload or --list-log")
        run_discovery(args)
    else:
        asyncio.run(run_kmock(args))


if __name__ == "__main__":
    main()
