#!/usr/bin/env python3
"""kmock's KubernetesEmulator behind a small shim so that the real kubectl can `apply` to it.

Usage: kmock_kubectl.py PORTFILE [--lifetime SECONDS]

kmock (PyPI, 0.8) stores and serves objects, but kubectl rejects two of its answers (see
/work/shared/reference/test-rigs.md): core discovery says groupVersion "/v1" instead of "v1", and
list responses lack kind/apiVersion; and it cannot create cluster-scoped core objects (a
Namespace POST fails inside kmock). This script runs kmock on 127.0.0.1, and in front of it an
aiohttp proxy (also on 127.0.0.1) that fixes those two answers, stores Namespaces itself, and
passes everything else through.
It writes the proxy's port to PORTFILE and exits by itself after --lifetime seconds.
"""
import argparse
import asyncio
import json
import os

import aiohttp
from aiohttp import web

import kmock


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("portfile")
    ap.add_argument("--lifetime", type=float, default=120.0)
    # issue 15: also serve the External Secrets Operator's kinds (as if its CRDs were installed).
    ap.add_argument("--eso", action="store_true")
    args = ap.parse_args()

    emulator = kmock.KubernetesEmulator()
    emulator.resources.load_bundled()
    if args.eso:
        verbs = {"get", "list", "watch", "create", "update", "patch", "delete"}
        for plural, kind, namespaced in [("externalsecrets", "ExternalSecret", True),
                                         ("secretstores", "SecretStore", True),
                                         ("clustersecretstores", "ClusterSecretStore", False)]:
            emulator.resources[f"external-secrets.io/v1/{plural}"] = kmock.ResourceInfo(
                kind=kind, singular=kind.lower(), namespaced=namespaced, verbs=verbs)
    async with emulator, kmock.Server(emulator, host="127.0.0.1") as backend:
        upstream = f"http://127.0.0.1:{backend.port}"
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
        with open(args.portfile + ".tmp", "w") as f:
            f.write(str(port))
        os.replace(args.portfile + ".tmp", args.portfile)
        try:
            await asyncio.sleep(args.lifetime)
        finally:
            await session.close()
            await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
