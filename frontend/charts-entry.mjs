// What the explorer's charts use of Observable Plot and topojson-client, bundled into
// stats/static/vendor/explorer-charts/ by vendor.mjs (only these parts of Plot and d3 are shipped).
export { barX, dot, geo, lineY, plot, text } from "@observablehq/plot";
export { feature } from "topojson-client";
