// Charts of the explorer, drawn from the public GraphQL API (GET, so caches can keep the answers),
// as any frontend would. Each <figure data-chart> gets its chart; the server-rendered tables next
// to it hold the same figures and stay the accessible alternative.
"use strict";

const Plot = window.ExplorerCharts; // Observable Plot's marks and topojson's feature (vendor/explorer-charts)

async function graphql(query, variables) {
  const url = "/graphql?" + new URLSearchParams({ query, variables: JSON.stringify(variables) });
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  const body = await response.json();
  if (body.errors) throw new Error(body.errors.map((e) => e.message).join("; "));
  return body.data;
}

const SERIES = `query Series($indicator: String!, $period: Period!) {
  series(indicator: $indicator, period: $period) {
    year displayValue valueText qualifier source { title }
    observation { id flag note restatements { value valueText } }
  }
}`;
const TABLE = `query Breakdown($indicator: String!, $year: Int!, $rows: String!) {
  table(indicator: $indicator, year: $year, rows: $rows) {
    rows { member { code label } cells { displayValue valueText flag } }
  }
}`;
const SERIES_HEIGHT = 260; // the stylesheet keeps this room for it, so nothing below moves
const PRINTED_BEFORE = { MORE_THAN: "more than ", OVER: "over ", NEARLY: "nearly ", APPROXIMATELY: "approximately ", AT_LEAST: "at least ", LESS_THAN: "less than " };

function printed(point) {
  return (PRINTED_BEFORE[point.qualifier] || "") + point.valueText + (point.qualifier === "PLUS" ? "+" : "");
}

function show(figure, chart, label) {
  // One image with one label: the marks' own labels would be read out of context (and a <g>
  // may not carry one).
  for (const part of chart.querySelectorAll("[aria-label], [aria-description]")) {
    part.removeAttribute("aria-label");
    part.removeAttribute("aria-description");
  }
  chart.setAttribute("role", "img");
  chart.setAttribute("aria-label", label);
  figure.insertBefore(chart, figure.querySelector("figcaption"));
  figure.classList.add("drawn");
}

async function seriesChart(figure) {
  const { indicator, period, label } = figure.dataset;
  const { series } = await graphql(SERIES, { indicator, period: period.toUpperCase() });
  const points = series.filter((p) => p.displayValue !== null).map((p) => ({
    ...p,
    value: Number(p.displayValue),
    marked: Boolean(p.observation.flag) || p.observation.restatements.some((r) => r.value !== null && Number(r.value) !== Number(p.displayValue)),
    tip: `${p.year}: ${printed(p)} (${p.source.title})` + (p.observation.flag ? ` — flagged: ${p.observation.note}` : "") +
      (p.observation.restatements.length ? ` — also printed as ${[...new Set(p.observation.restatements.map((r) => r.valueText))].join(", ")}` : ""),
  }));
  const chart = Plot.plot({
    width: Math.min(figure.clientWidth || 640, 800),
    height: SERIES_HEIGHT,
    marginLeft: 70,
    x: { label: "Year", tickFormat: "d", ticks: points.map((p) => p.year) },
    y: { label, grid: true, zero: true, tickFormat: "~s" },
    marks: [
      Plot.lineY(points, { x: "year", y: "value", stroke: "#0b4f8a" }),
      Plot.dot(points, { x: "year", y: "value", r: 5, stroke: "#0b4f8a", fill: (p) => (p.marked ? "white" : "#0b4f8a"), title: "tip" }),
      Plot.text(points.filter((p) => p.marked), { x: "year", y: "value", text: (p) => (p.observation.flag ? "flagged" : "restated"), dy: -12, fill: "#8a3b00" }),
    ],
  });
  show(figure, chart, `${label}: ` + points.map((p) => `${p.year} ${printed(p)}`).join(", "));
}

async function breakdown(figure) {
  const { indicator, year, rows } = figure.dataset;
  const { table } = await graphql(TABLE, { indicator, year: Number(year), rows });
  return table.rows
    .filter((r) => r.cells[0].displayValue !== null)
    .map((r) => ({ code: r.member.code, label: r.member.label, value: Number(r.cells[0].displayValue), valueText: r.cells[0].valueText, flag: r.cells[0].flag }));
}

async function barChart(figure) {
  const rows = await breakdown(figure);
  const chart = Plot.plot({
    width: Math.min(figure.clientWidth || 640, 800),
    height: 40 + rows.length * 26,
    marginLeft: 190,
    x: { label: null, grid: true, tickFormat: "~s" },
    y: { label: null, domain: rows.map((r) => r.label) },
    marks: [
      Plot.barX(rows, { y: "label", x: "value", fill: (r) => (r.flag ? "#8a3b00" : "#0b4f8a"), title: (r) => `${r.label}: ${r.valueText}` }),
      Plot.text(rows, { y: "label", x: "value", text: "valueText", dx: 4, textAnchor: "start" }),
    ],
  });
  show(figure, chart, rows.map((r) => `${r.label}: ${r.valueText}`).join(", "));
}

async function mapChart(figure) {
  const [rows, atlas] = await Promise.all([
    breakdown({ dataset: { ...figure.dataset, rows: "state" } }),
    fetch(figure.dataset.atlas).then((r) => r.json()),
  ]);
  const byName = new Map(rows.map((r) => [r.label, r]));
  const states = Plot.feature(atlas, atlas.objects.states).features;
  const value = (d) => byName.get(d.properties.name)?.value;
  const chart = Plot.plot({
    width: 975,
    projection: { type: "identity", domain: Plot.feature(atlas, atlas.objects.nation) },
    color: { type: "quantize", n: 6, scheme: "blues", legend: true, label: `${figure.dataset.label}, ${figure.dataset.year}`, tickFormat: "~s" },
    marks: [
      Plot.geo(states, {
        fill: value,
        stroke: "white",
        title: (d) => `${d.properties.name}: ${byName.get(d.properties.name)?.valueText ?? "not printed"}`,
      }),
    ],
  });
  show(figure, chart, `Map of ${rows.length} states and territories; the state table below lists every figure.`);
}

const CHARTS = { series: seriesChart, bars: barChart, map: mapChart };

function drawOne(figure) {
  CHARTS[figure.dataset.chart](figure).catch((error) => {
    const note = document.createElement("p");
    note.className = "notice";
    note.textContent = `The chart could not be drawn (${error.message}); the table below has the figures.`;
    figure.append(note);
  });
}

// A chart is fetched and drawn when it comes near the screen: a reader who opens a year's tables
// does not wait for the charts above them, and one who never scrolls to the map never loads it.
function draw() {
  const figures = document.querySelectorAll("figure[data-chart]");
  if (!("IntersectionObserver" in window)) return figures.forEach(drawOne);
  const observer = new IntersectionObserver((entries) => {
    for (const entry of entries.filter((e) => e.isIntersecting)) {
      observer.unobserve(entry.target);
      drawOne(entry.target);
    }
  }, { rootMargin: "200px" });
  figures.forEach((figure) => observer.observe(figure));
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
else draw();
