// Copies the pinned front-end assets from node_modules into stats/static/vendor/, laid out as
// unpkg.com lays them out (<package>@<version>/<path>), each with its licence. Run after changing a
// version in package.json:  cd frontend && npm ci && npm run vendor
// The served site never runs Node: the copied files are committed.
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildSync } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const target = join(here, "..", "stats", "static", "vendor");
const FILES = {
  react: ["umd/react.production.min.js"],
  "react-dom": ["umd/react-dom.production.min.js"],
  "js-cookie": ["dist/js.cookie.min.js"],
  graphiql: ["graphiql.min.css", "graphiql.min.js"],
  "@graphiql/plugin-explorer": ["dist/style.css", "dist/index.umd.js"],
  "us-atlas": ["states-albers-10m.json"],
};
const LICENCES = ["LICENSE", "LICENSE.md", "LICENSE.txt", "license"];

rmSync(target, { recursive: true, force: true });
const manifest = {};
for (const [name, files] of Object.entries(FILES)) {
  const root = join(here, "node_modules", name);
  const { version, license } = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  const dest = join(target, `${name}@${version}`);
  for (const file of [...files, ...LICENCES.filter((l) => existsSync(join(root, l)))]) {
    mkdirSync(dirname(join(dest, file)), { recursive: true });
    copyFileSync(join(root, file), join(dest, file));
    if (/\.(js|css)$/.test(file)) {
      // Source maps are not shipped: drop the comment so no browser or collectstatic looks for them.
      const text = readFileSync(join(dest, file), "utf8").replace(/\n?\/[/*][#@] sourceMappingURL=\S+( \*\/)?\s*$/, "\n");
      writeFileSync(join(dest, file), text);
    }
  }
  manifest[name] = { version, license, files };
}

// The charts' part of Observable Plot, d3 and topojson-client, as one script (window.ExplorerCharts):
// about half the bytes of the three full bundles, so less for a phone to parse before a chart appears.
const charts = join(target, "explorer-charts");
mkdirSync(charts, { recursive: true });
buildSync({
  entryPoints: [join(here, "charts-entry.mjs")],
  bundle: true,
  minify: true,
  format: "iife",
  globalName: "ExplorerCharts",
  legalComments: "none",
  banner: { js: "/* Observable Plot, d3 and topojson-client (ISC licence): see LICENSES.txt */" },
  outfile: join(charts, "charts.min.js"),
});
const bundled = ["@observablehq/plot", "d3", "topojson-client"];
const licences = bundled.map((name) => {
  const root = join(here, "node_modules", name);
  const { version } = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  manifest[`explorer-charts: ${name}`] = { version, license: "ISC" };
  return `${name}@${version}\n\n${readFileSync(join(root, LICENCES.find((l) => existsSync(join(root, l)))), "utf8")}`;
});
writeFileSync(join(charts, "LICENSES.txt"), licences.join("\n\n----\n\n"));
writeFileSync(join(target, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
console.log(`vendored ${Object.keys(manifest).length} packages into ${target}`);
