// Bundle the iframe runtime: src/main.ts (+ its CSS and uPlot) -> dist/embed-<hash>.{js,css},
// a manifest the server reads (dist/manifest.json) and precompressed .gz siblings.
// Usage: node build.mjs [--sizes]   (npm run build)
import { build } from "esbuild";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "dist");
rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });

const result = await build({
  entryPoints: { embed: join(here, "src", "main.ts") },
  bundle: true,
  minify: true,
  format: "esm",
  target: ["es2020", "chrome100", "firefox100", "safari15"],
  outdir: dist,
  entryNames: "[name]-[hash]",
  metafile: true,
  legalComments: "none",
  logLevel: "warning",
});

const manifest = {};
const sizes = [];
for (const file of Object.keys(result.metafile.outputs)) {
  const name = basename(file);
  const key = name.endsWith(".css") ? "embed.css" : "embed.js";
  manifest[key] = name;
  const raw = readFileSync(join(dist, name));
  const gz = gzipSync(raw, { level: 9 });
  writeFileSync(join(dist, `${name}.gz`), gz);
  sizes.push({ file: name, bytes: raw.length, gzip: gz.length });
}
if (!manifest["embed.js"] || !manifest["embed.css"]) {
  throw new Error(`unexpected build outputs: ${JSON.stringify(manifest)}`);
}
writeFileSync(join(dist, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
writeFileSync(join(dist, "sizes.json"), JSON.stringify(sizes, null, 2) + "\n");
for (const s of sizes) {
  console.log(`${s.file}: ${(s.bytes / 1024).toFixed(1)} KiB, ${(s.gzip / 1024).toFixed(1)} KiB gzipped`);
}
