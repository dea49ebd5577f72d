"""kmock's KubernetesEmulator on 127.0.0.1 for `tests/audit_cluster.rs`.

Usage: kmock_audit_server.py OBJECTS.json LOG.jsonl

OBJECTS.json is a list of Kubernetes objects (with metadata.namespace); they are loaded into the
emulator before it listens. kmock 0.8 serves lists whole, so this adds what a real API server
does with `limit` and `continue` (pages in a stable order, an opaque token, a 410-free happy
path), refuses pages larger than 500 with 400 (a real server would not, but the test wants to
know), and logs every list request (path, limit, continue) to LOG.jsonl.
Prints `PORT <n>` when ready; stops when stdin closes or after 300 s.
"""

import asyncio
import base64
import json
import sys

import kmock

MAX_LIMIT = 500
PLURALS = {
    "Pod": "v1/pods",
    "Secret": "v1/secrets",
    "Deployment": "apps/v1/deployments",
    "StatefulSet": "apps/v1/statefulsets",
    "DaemonSet": "apps/v1/daemonsets",
    "ReplicaSet": "apps/v1/replicasets",
    "Job": "batch/v1/jobs",
    "CronJob": "batch/v1/cronjobs",
}


class PaginatingEmulator(kmock.KubernetesEmulator):
    log = None

    async def _serve_list(self, request):
        page = await super()._serve_list(request)
        params = request.params
        limit = params.get("limit")
        token = params.get("continue")
        self.log.write(json.dumps({"path": str(request.url.path), "limit": limit, "continue": token}) + "\n")
        self.log.flush()
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


async def main():
    objects = json.load(open(sys.argv[1]))
    log = open(sys.argv[2], "w")
    emulator = PaginatingEmulator()
    emulator.log = log
    emulator.resources.load_bundled()
    for obj in objects:
        plural = PLURALS[obj["kind"]]
        meta = obj["metadata"]
        emulator.objects[plural, meta.get("namespace"), meta["name"]] = obj
    async with emulator, kmock.Server(emulator, host="127.0.0.1") as server:
        print(f"PORT {server.port}", flush=True)
        loop = asyncio.get_running_loop()
        stdin_closed = loop.run_in_executor(None, sys.stdin.read)
        await asyncio.wait_for(stdin_closed, timeout=300)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except (asyncio.TimeoutError, KeyboardInterrupt):
        pass
