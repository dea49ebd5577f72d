// Opens a SOPS YAML stream with decoders sealkey did not write, for tests/interop_sops.rs.
//
// usage: node decode.mjs FILE  (the age identity, AGE-SECRET-KEY-1..., comes in SOPS_AGE_KEY)
//
// Every document with a top-level `sops` block is opened twice:
// - by `sops-age` (humphd/sops-age): values decrypted with its own age and AES-GCM code;
// - by `sops-decoder` (koblas/sops-decoder-node), which also recomputes and checks the MAC. It
//   only knows AWS KMS, so its KMS call is answered with the data key that `age-encryption`
//   (typage, Filippo Valsorda's TypeScript age) unwraps from the document's `sops.age` entry.
// Prints a JSON array of the decrypted documents (from sops-age), after checking that both
// decoders agree. Exits 1 with a message on any failure.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { parseAllDocuments } from "yaml";
import { decryptSops } from "sops-age";
import { Decrypter, armor } from "age-encryption";

const require = createRequire(import.meta.url);
const sopsDecoder = require("sops-decoder");
const { KMSClient } = require("@aws-sdk/client-kms");

const file = process.argv[2];
const secretKey = (process.env.SOPS_AGE_KEY || "").trim();
if (!file || !secretKey) {
  console.error("usage: SOPS_AGE_KEY=AGE-SECRET-KEY-1... node decode.mjs FILE");
  process.exit(2);
}

async function dataKeyOf(doc) {
  const errors = [];
  for (const entry of doc.sops.age || []) {
    try {
      const d = new Decrypter();
      d.addIdentity(secretKey);
      return await d.decrypt(armor.decode(entry.enc));
    } catch (e) {
      errors.push(String(e));
    }
  }
  throw new Error(`no age entry opens the data key: ${errors.join("; ")}`);
}

async function withMacCheck(doc) {
  const key = await dataKeyOf(doc);
  KMSClient.prototype.send = async () => ({ Plaintext: new Uint8Array(key) });
  const copy = structuredClone(doc);
  copy.sops.kms = [{ arn: "arn:aws:kms:us-east-1:000000000000:key/interop", enc: "AA==" }];
  return sopsDecoder.decrypt(copy);
}

const text = readFileSync(file, "utf8");
const docs = parseAllDocuments(text).map((d) => {
  if (d.errors.length) throw new Error(`YAML error: ${d.errors[0].message}`);
  return d.toJS();
});
const out = [];
try {
  for (const [i, doc] of docs.entries()) {
    if (doc === null) continue;
    if (!doc.sops) {
      out.push(doc);
      continue;
    }
    const viaSopsAge = await decryptSops(structuredClone(doc), { secretKey });
    const viaDecoder = await withMacCheck(doc);
    const a = JSON.stringify(viaSopsAge);
    const b = JSON.stringify(viaDecoder);
    if (a !== b) {
      throw new Error(`document ${i + 1}: sops-age and sops-decoder disagree:\n${a}\n${b}`);
    }
    out.push(viaSopsAge);
  }
} catch (e) {
  console.error(`decode failed: ${e && e.message ? e.message : e}`);
  process.exit(1);
}
console.log(JSON.stringify(out));
