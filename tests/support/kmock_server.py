#!/usr/bin/env python3
"""Runs kmock's stateful KubernetesEmulator on 127.0.0.1 for sealkey's cluster tests.

Usage: kmock_server.py PORTFILE [--seed FILE.json] [--lifetime SECONDS]

Loads kmock's bundled resource list (core/v1, apps/v1, batch/v1, ...), stores the objects in
--seed (a JSON list) as if they had been created, writes the port it listens on to PORTFILE and
serves until killed or until --lifetime seconds have passed (so a crashed test leaves nothing
running). kmock's limits (see /work/shared/reference/test-rigs.md): no server-side-apply create
(404, so sealkey falls back to POST), no resourceVersion, PUT unsupported, dryRun ignored.
"""
import argparse
import asyncio
import json
import os
import sys

import kmock


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("portfile")
    ap.add_argument("--seed")
    ap.add_argument("--lifetime", type=float, default=300.0)
    args = ap.parse_args()

    emulator = kmock.KubernetesEmulator()
    emulator.resources.load_bundled()
    async with emulator, kmock.Server(emulator, host="127.0.0.1") as server:
        if args.seed:
            with open(args.seed, encoding="utf-8") as f:
                for obj in json.load(f):
                    api = obj["apiVersion"]
                    ns = obj["metadata"]["namespace"]
                    plural = PLURALS[obj["kind"]]
                    prefix = "/api/v1" if api == "v1" else f"/apis/{api}"
                    url = f"{prefix}/namespaces/{ns}/{plural}"
                    async with server.client.post(url, json=obj) as resp:
                        if resp.status >= 300:
                            sys.exit(f"seeding {url} failed: {resp.status} {await resp.text()}")
        with open(args.portfile + ".tmp", "w") as f:
            f.write(str(server.port))
        os.replace(args.portfile + ".tmp", args.portfile)
        await asyncio.sleep(args.lifetime)


PLURALS = {
    "Secret": "secrets",
    "ConfigMap": "configmaps",
    "Pod": "pods",
    "Deployment": "deployments",
    "StatefulSet": "statefulsets",
    "DaemonSet": "daemonsets",
    "CronJob": "cronjobs",
}

if __name__ == "__main__":
    asyncio.run(main())
