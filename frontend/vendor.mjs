// Copies the pinned front-end assets from node_modules into stats/static/vendor/, laid out as
// unpkg.com lays them out (<package>@<version>/<path>), each with its licence. Run after changing a
// version in package.json:  cd frontend && npm ci && npm run vendor
// The served site never runs Node: the copied files are committed.
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const target = join(here, "..", "stats", "static", "vendor");
const FILES = {
  react: ["umd/react.production.min.js"],
  "react-dom": ["umd/react-dom.production.min.js"],
  "js-cookie": ["dist/js.cookie.min.js"],
  graphiql: ["graphiql.min.css", "graphiql.min.js"],
  "@graphiql/plugin-explorer": ["dist/style.css", "dist/index.umd.js"],
  d3: ["dist/d3.min.js"],
  "@observablehq/plot": ["dist/plot.umd.min.js"],
  "topojson-client": ["dist/topojson-client.min.js"],
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
writeFileSync(join(target, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
console.log(`vendored ${Object.keys(manifest).length} packages into ${target}`);
