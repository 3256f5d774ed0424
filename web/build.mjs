// Bundles the client into dist/: dist/index.html, dist/room.html, dist/assets/*.{js,css}.
// Usage: node build.mjs            (production bundle, minified)
//        node build.mjs --dev      (not minified, inline source maps)
import { build } from "esbuild";
import { cpSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "dist");
const dev = process.argv.includes("--dev");

rmSync(dist, { recursive: true, force: true });
mkdirSync(join(dist, "assets"), { recursive: true });

await build({
  entryPoints: { index: join(here, "src/index.ts"), style: join(here, "static/style.css") },
  outdir: join(dist, "assets"),
  bundle: true,
  format: "esm",
  platform: "browser",
  target: ["es2020", "chrome100", "firefox100", "safari15"],
  minify: !dev,
  sourcemap: dev ? "inline" : "linked",
  legalComments: "linked",
  logLevel: "info",
  define: { "process.env.NODE_ENV": JSON.stringify(dev ? "development" : "production") },
});

for (const page of ["index.html", "room.html"]) {
  cpSync(join(here, "static", page), join(dist, page));
}
console.log(`web: built ${dist}`);
