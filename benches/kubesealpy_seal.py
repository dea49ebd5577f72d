"""Peer for benches/seal.sh: seal every Secret of a YAML stream on stdin with PyPI kubesealpy
(RSA-OAEP via Python `cryptography`/OpenSSL), as `kubeseal` would, and print the SealedSecrets.
usage: kubesealpy_seal.py CERT.pem < secrets.yaml > sealed.yaml"""
import sys

import yaml
from kubesealpy import Sealer
from kubesealpy.models import Secret

sealer = Sealer.from_certificate_file(sys.argv[1])
out = []
for doc in yaml.safe_load_all(sys.stdin):
    if doc:
        out.append(sealer.seal_secret(Secret.model_validate(doc)).to_yaml())
sys.stdout.write("---\n".join(out))
