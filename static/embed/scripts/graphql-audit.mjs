// The graphql-http conformance audit (GraphQL over HTTP spec, serverAudits) against a running
// server: node scripts/graphql-audit.mjs http://127.0.0.1:8000/graphql
// Prints one JSON object: {"ok": n, "warn": n, "error": n, "problems": [{status, name, reason}]};
// exits 1 when anything warned or failed.
import { serverAudits } from "graphql-http";

const url = process.argv[2];
if (!url) {
  console.error("usage: node scripts/graphql-audit.mjs <graphql url>");
  process.exit(2);
}
const counts = { ok: 0, warn: 0, error: 0 };
const problems = [];
for (const audit of serverAudits({ url })) {
  const result = await audit.fn();
  counts[result.status] += 1;
  if (result.status !== "ok") {
    problems.push({ status: result.status, name: audit.name, reason: result.reason });
  }
}
console.log(JSON.stringify({ ...counts, problems }, null, 2));
process.exit(problems.length ? 1 : 0);
