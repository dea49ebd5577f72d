"""Opens sealkey's SealedSecrets with PyPI kubesealpy (an unsealer sealkey did not write).

usage:
  unseal.py KEY.pem FILE                 print each SealedSecret, unsealed, as JSON lines
  unseal.py KEY.pem FILE --as NS/NAME    try to open every value under another name (strict
                                         scope label NS/NAME); exit 1 if any value opens
  unseal.py expired-cert OUTDIR          write an RSA key and an already expired cert (for tests)
"""
import base64
import datetime
import json
import sys

import yaml


def unseal(key_path, file_path, as_other=None):
    from kubesealpy import SealedSecret, Unsealer
    from kubesealpy.scopes import SealingScope

    unsealer = Unsealer.from_private_key_file(key_path)
    with open(file_path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    for doc in docs:
        if doc.get("kind") != "SealedSecret":
            print(json.dumps({"passed_through": doc}))
            continue
        sealed = SealedSecret.model_validate(doc)
        if as_other:
            ns, name = as_other.split("/", 1)
            for key, value in sealed.spec.encrypted_data.items():
                try:
                    unsealer.unseal_value(base64.b64decode(value), ns, name, SealingScope.STRICT)
                except Exception:
                    continue
                print(f"value {key} opened under {as_other}", file=sys.stderr)
                sys.exit(1)
            print(json.dumps({"refused": sorted(sealed.spec.encrypted_data)}))
            continue
        secret = unsealer.unseal(sealed)
        print(json.dumps(secret.model_dump(by_alias=True, exclude_none=True)))


def expired_cert(outdir):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sealed-secret")])
    past = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(past)
        .not_valid_after(past + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    with open(f"{outdir}/expired.pem", "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))


if __name__ == "__main__":
    if sys.argv[1] == "expired-cert":
        expired_cert(sys.argv[2])
    else:
        as_other = sys.argv[4] if len(sys.argv) > 4 and sys.argv[3] == "--as" else None
        unseal(sys.argv[1], sys.argv[2], as_other)
