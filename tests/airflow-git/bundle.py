"""Fetches a DAG bundle the way Airflow's DAG processor does, for tests/interop_airflow_git.rs.

usage: python bundle.py NAME   (in the repo's .venv-airflow; scripts/install-test-deps makes it)

The connection (AIRFLOW_CONN_*) and the bundle list (AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST)
come from the environment, exactly as the ConfigMap sealkey emits sets them through envFrom.
Airflow's own DagBundlesManager parses the list and builds the GitDagBundle, which clones with
apache-airflow-providers-git's GitHook. Prints one JSON line: {"ok": true, "files": [...], "version": COMMIT} or
{"ok": false, "error": "..."}; exits 1 on failure.
"""
import json
import os
import sys


def main(name):
    from airflow.dag_processing.bundles.manager import DagBundlesManager

    try:
        bundle = DagBundlesManager().get_bundle(name)
        bundle.initialize()
        version = bundle.get_current_version()
        files = sorted(
            os.path.relpath(os.path.join(d, f), bundle.path)
            for d, _, fs in os.walk(bundle.path)
            if ".git" not in os.path.relpath(d, bundle.path).split(os.sep)
            for f in fs
        )
        print(json.dumps({"ok": True, "classpath": type(bundle).__module__ + "." + type(bundle).__name__,
                          "files": files, "version": getattr(version, "version", version)}))
        return 0
    except Exception as e:  # the test reads the reason, causes included (git's stderr)
        reasons = []
        while e is not None:
            reasons.append(f"{type(e).__name__}: {e}")
            e = e.__cause__ or e.__context__
        print(json.dumps({"ok": False, "error": " <- ".join(reasons)}))
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
