// Opens a SOPS YAML stream whose data keys are sealed to AWS KMS, with koblas/sops-decoder-node
// (`sops-decoder`), which calls KMS Decrypt itself through the AWS SDK for JavaScript (v3) and
// checks the MAC. For tests/interop_kms.rs; AWS_ENDPOINT_URL points the SDK at the test server.
//
// usage: node decode-kms.mjs FILE
// Prints a JSON array of the decrypted documents. Exits 1 with a message on any failure.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { parseAllDocuments } from "yaml";

const require = createRequire(import.meta.url);
const sopsDecoder = require("sops-decoder");

const file = process.argv[2];
const docs = parseAllDocuments(readFileSync(file, "utf8")).map((d) => {
  if (d.errors.length) throw new Error(`YAML error: ${d.errors[0].message}`);
  return d.toJS();
});
const out = [];
try {
  for (const doc of docs) {
    if (doc === null) continue;
    if (!doc.sops) throw new Error("a document without a sops block");
    out.push(await sopsDecoder.decrypt(doc));
  }
} catch (e) {
  console.error(`sops-decoder: ${e && e.message ? e.message : e}`);
  process.exit(1);
}
console.log(JSON.stringify(out));
