"""moto's server (real Secrets Manager, KMS and STS wire protocols) on 127.0.0.1, wrapped with
two test hooks that moto itself does not have:

- a call counter: GET /_sealkey/calls answers {"TrentService.Encrypt": 3, ...} (the JSON
  protocol's X-Amz-Target of every request seen), so a test can count KMS calls on the server;
- KMS key state: Encrypt/Decrypt/GenerateDataKey under a disabled key answer DisabledException,
  as AWS does (moto itself encrypts under disabled keys);
- a fault injector: POST /_sealkey/fault {"action": "secretsmanager.PutSecretValue",
  "code": "ThrottlingException", "status": 400, "count": 2} makes the next COUNT requests for
  that action fail with that AWS error before moto sees them. "count": -1 fails every one;
  "after": true lets moto carry the request out first (a lost answer).

Usage: moto_server.py PORT. Serves until killed (the test kills it on drop).
"""

import io
import json
import sys
import threading

from werkzeug.serving import run_simple

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

lock = threading.Lock()
calls = {}
faults = {}


def action_of(environ):
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    # secretsmanager.PutSecretValue, TrentService.Encrypt; STS (query protocol) is not counted.
    return target


def key_state(key_id):
    """The moto key's state for any KeyId form (id, key ARN, alias name or ARN); None if unknown."""
    from moto.kms.models import kms_backends

    for _account, regions in kms_backends.items():
        for _region, backend in regions.items():
            try:
                kid = key_id
                if ":alias/" in kid or kid.startswith("alias/"):
                    kid = backend.get_key_id_from_alias("alias/" + kid.split("alias/", 1)[1])
                    if kid is None:
                        continue
                kid = backend.get_key_id(kid)
                if kid in backend.keys:
                    return backend.keys[kid].key_state
            except Exception:
                continue
    return None


def app(inner):
    def wrapped(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/_sealkey/calls":
            with lock:
                body = json.dumps(calls).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        if path == "/_sealkey/reset":
            with lock:
                calls.clear()
                faults.clear()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [b"{}"]
        if path == "/_sealkey/fault":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            spec = json.loads(environ["wsgi.input"].read(length) or b"{}")
            with lock:
                faults[spec["action"]] = spec
            start_response("200 OK", [("Content-Type", "application/json")])
            return [b"{}"]
        action = action_of(environ)
        if action in ("TrentService.Encrypt", "TrentService.Decrypt", "TrentService.GenerateDataKey"):
            length = int(environ.get("CONTENT_LENGTH") or 0)
            raw = environ["wsgi.input"].read(length)
            environ["wsgi.input"] = io.BytesIO(raw)
            state = key_state(json.loads(raw or b"{}").get("KeyId", ""))
            if state not in (None, "Enabled"):
                with lock:
                    calls[action] = calls.get(action, 0) + 1
                code = "DisabledException" if state == "Disabled" else "KMSInvalidStateException"
                body = json.dumps({"__type": code, "message": f"key is {state}."}).encode()
                start_response("400 Bad Request", [("Content-Type", "application/x-amz-json-1.1")])
                return [body]
        if action:
            with lock:
                calls[action] = calls.get(action, 0) + 1
                spec = faults.get(action)
                fire = spec is not None and spec.get("count", 1) != 0
                if fire and spec.get("count", 1) > 0:
                    spec["count"] -= 1
            if fire and spec.get("after"):
                # A lost answer: the request is carried out, then the client sees an error.
                body = b"".join(inner(environ, lambda *a, **k: None))
                del body
            if fire:
                status = spec.get("status", 400)
                body = json.dumps(
                    {"__type": spec["code"], "message": spec.get("message", "injected by the test")}
                ).encode()
                start_response(
                    f"{status} Injected",
                    [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", spec["code"])],
                )
                return [body]
        return inner(environ, start_response)

    return wrapped


if __name__ == "__main__":
    port = int(sys.argv[1])
    main_app = DomainDispatcherApplication(create_backend_app)
    run_simple("127.0.0.1", port, app(main_app), threaded=True, use_reloader=False)
