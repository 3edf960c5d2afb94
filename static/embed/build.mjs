// The browser side's build (npm run build; `make install` runs it):
// - the iframe runtime: src/main.ts (+ its CSS and uPlot) -> dist/embed-<hash>.{js,css};
// - GraphiQL for /graphql: graphiql/main.ts (+ graphiql, React, graphql-ws) -> dist/graphiql-<hash>.{js,css};
// - a manifest the server reads (dist/manifest.json), dist/sizes.json and precompressed .gz siblings;
// - the host helper: host.ts -> host.js (esbuild, an IIFE setting window.Emban) and host.d.ts
//   (tsc --emitDeclarationOnly). Both are committed (served as they are, readable);
//   `node build.mjs --check` rebuilds them in a temp dir and fails when the committed ones differ.
// The runtime's script has a budget (RUNTIME_JS_BUDGET_GZIP): the build fails above it.
import { build } from "esbuild";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { stripIgnoredCharacters } from "graphql";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "dist");
const TARGET = ["es2020", "chrome100", "firefox100", "safari15"];
/** The spec's budget for the runtime script, gzipped, uPlot included: 80 KB. */
export const RUNTIME_JS_BUDGET_GZIP = 80_000;

const HOST_BANNER = `/*!
 * Emban host helper — mounts a signed embed URL in an iframe and speaks the postMessage contract.
 * <script src="https://your-emban/static/embed/host.js"></script>
 *
 *   const embed = Emban.mount(document.getElementById("analytics"), { url: signedEmbedUrl });
 *   embed.on("filter", (event) => console.log(event.period, event.filters));
 *   embed.setFilters({ period: "7d", dimensions: { model: "gpt-4" } });
 *   embed.setTheme({ primaryColor: "#0f9d58" });
 *   embed.setEmbedUrl(nextSignedUrl); // swap the session, keep the filters → "session-swapped"
 *
 * Types: host.d.ts (served next to this file). Generated from host.ts by build.mjs: edit that.
 */`;
const DTS_BANNER = `// Type declarations for Emban's host helper (static/embed/host.js, served at
// /static/embed/host.js). The postMessage contract is the spec's "Browser Runtime" tables.
// Generated from host.ts by build.mjs (tsc --emitDeclarationOnly): edit that.
`;

/** host.js and host.d.ts from host.ts, written into `outDir`. */
async function buildHost(outDir) {
  await build({
    entryPoints: [join(here, "host.ts")],
    bundle: true,
    format: "iife",
    target: TARGET,
    minify: false,
    legalComments: "none",
    banner: { js: HOST_BANNER },
    outfile: join(outDir, "host.js"),
    logLevel: "warning",
  });
  const types = mkdtempSync(join(tmpdir(), "emban-host-types-"));
  try {
    execFileSync(
      process.execPath,
      [join(here, "node_modules", "typescript", "bin", "tsc"), "-p", join(here, "tsconfig.host.json"), "--declarationDir", types],
      { stdio: "inherit" },
    );
    writeFileSync(join(outDir, "host.d.ts"), DTS_BANNER + readFileSync(join(types, "host.d.ts"), "utf8"));
  } finally {
    rmSync(types, { recursive: true, force: true });
  }
}

if (process.argv.includes("--check")) {
  const out = mkdtempSync(join(tmpdir(), "emban-host-"));
  try {
    await buildHost(out);
    const stale = ["host.js", "host.d.ts"].filter(
      (name) => readFileSync(join(out, name), "utf8") !== readFileSync(join(here, name), "utf8"),
    );
    if (stale.length) {
      console.error(`${stale.join(", ")}: not what host.ts builds to; run \`npm run build\` and commit them`);
      process.exit(1);
    }
    console.log("host.js, host.d.ts: up to date with host.ts");
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
  process.exit(0);
}

rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });

/** src/graphql/*.graphql as text, without comments and insignificant whitespace. */
const graphqlDocuments = {
  name: "graphql-documents",
  setup(plugin) {
    plugin.onLoad({ filter: /\.graphql$/ }, (args) => ({
      contents: stripIgnoredCharacters(readFileSync(args.path, "utf8")),
      loader: "text",
    }));
  },
};

const bundles = await build({
  entryPoints: { embed: join(here, "src", "main.ts"), graphiql: join(here, "graphiql", "main.ts") },
  bundle: true,
  minify: true,
  format: "esm",
  target: TARGET,
  outdir: dist,
  entryNames: "[name]-[hash]",
  plugins: [graphqlDocuments],
  define: { "process.env.NODE_ENV": '"production"' },
  metafile: true,
  legalComments: "none",
  logLevel: "warning",
});

const manifest = {};
const sizes = [];
for (const file of Object.keys(bundles.metafile.outputs)) {
  const name = basename(file);
  const entry = name.slice(0, name.lastIndexOf("-")); // embed | graphiql
  manifest[`${entry}.${name.endsWith(".css") ? "css" : "js"}`] = name;
  const raw = readFileSync(join(dist, name));
  const gz = gzipSync(raw, { level: 9 });
  writeFileSync(join(dist, `${name}.gz`), gz);
  sizes.push({ file: name, bytes: raw.length, gzip: gz.length });
}
for (const key of ["embed.js", "embed.css", "graphiql.js", "graphiql.css"]) {
  if (!manifest[key]) throw new Error(`unexpected build outputs: ${JSON.stringify(manifest)}`);
}
writeFileSync(join(dist, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
writeFileSync(join(dist, "sizes.json"), JSON.stringify(sizes, null, 2) + "\n");
for (const s of sizes) {
  console.log(`${s.file}: ${(s.bytes / 1024).toFixed(1)} KiB, ${(s.gzip / 1024).toFixed(1)} KiB gzipped`);
}
const runtime = sizes.find((s) => s.file === manifest["embed.js"]);
if (runtime.gzip > RUNTIME_JS_BUDGET_GZIP) {
  console.error(`${runtime.file}: ${runtime.gzip} bytes gzipped, over the ${RUNTIME_JS_BUDGET_GZIP}-byte budget`);
  process.exit(1);
}

await buildHost(here);
