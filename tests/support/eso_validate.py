"""Checks External Secrets Operator documents against ESO's published v1 CRD schemas.

Usage: eso_validate.py SCHEMA_DIR FILE.yaml

SCHEMA_DIR holds KIND.v1.schema.json (the openAPIV3Schema of each CRD, vendored from
external-secrets/external-secrets). Every document of FILE whose apiVersion is
external-secrets.io/v1 is validated with jsonschema, and then field by field: a field the schema
does not declare is an error too (the API server would prune it silently, so a typo such as
`serviceAcountRef` would pass jsonschema and do nothing). Prints one line per problem and exits 1
when there is any; prints the checked kinds and exits 0 otherwise.
"""

import json
import sys

import jsonschema
import yaml


def unknown_fields(doc, schema, path, out):
    if isinstance(doc, dict) and schema.get("type") == "object":
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        for k, v in doc.items():
            if props is not None and k in props:
                unknown_fields(v, props[k], f"{path}.{k}", out)
            elif isinstance(extra, dict):
                unknown_fields(v, extra, f"{path}.{k}", out)
            elif props is not None and not schema.get("x-kubernetes-preserve-unknown-fields"):
                if path == "" and k in ("apiVersion", "kind", "metadata", "status"):
                    continue
                out.append(f"{path}.{k}: not a field of the schema")
    elif isinstance(doc, list) and "items" in schema:
        for i, v in enumerate(doc):
            unknown_fields(v, schema["items"], f"{path}[{i}]", out)


def main():
    schema_dir, file = sys.argv[1], sys.argv[2]
    problems, checked = [], []
    with open(file, encoding="utf-8") as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    for doc in docs:
        if doc.get("apiVersion") != "external-secrets.io/v1":
            continue
        kind = doc["kind"]
        with open(f"{schema_dir}/{kind}.v1.schema.json", encoding="utf-8") as f:
            schema = json.load(f)["schema"]
        v = jsonschema.Draft7Validator(schema)
        for e in v.iter_errors(doc):
            problems.append(f"{kind} {'.'.join(map(str, e.absolute_path))}: {e.message}")
        out = []
        unknown_fields(doc, schema, "", out)
        problems += [f"{kind} {p}" for p in out]
        checked.append(kind)
    if problems:
        print("\n".join(problems))
        sys.exit(1)
    print(json.dumps(checked))


if __name__ == "__main__":
    main()
