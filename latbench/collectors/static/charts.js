// Small SVG charts for the dashboard: a histogram and a measured-vs-predicted scatter. No library: each chart is a
// few shapes, two linear scales and ticks at round numbers.

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 380;
const HEIGHT = 240;
const MARGIN = { top: 12, right: 14, bottom: 42, left: 52 };

function svg(name, attrs = {}, parent = null) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (parent) parent.appendChild(node);
  return node;
}

function text(parent, x, y, content, attrs = {}) {
  const node = svg("text", { x, y, ...attrs }, parent);
  node.textContent = content;
  return node;
}

function linear(domain, range) {
  const [d0, d1] = domain;
  const [r0, r1] = range;
  const span = d1 - d0 || 1;
  return (value) => r0 + ((value - d0) / span) * (r1 - r0);
}

// Ticks at 1, 2 or 5 times a power of ten, about `count` of them across [lo, hi]. Counted by index rather than by
// adding the step until past hi: a few ulps apart, or near the largest float, adding the step may not move at all.
export function ticks(lo, hi, count = 5) {
  const raw = (hi - lo) / count;
  if (!(hi > lo) || !Number.isFinite(raw)) return [lo];
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const first = Math.ceil(lo / step) * step;
  const out = [];
  for (let i = 0; i <= 2 * count; i += 1) {
    const v = Number((first + i * step).toPrecision(12));
    if (!Number.isFinite(v) || v > hi + step * 1e-9) break;
    if (v !== out[out.length - 1]) out.push(v);
  }
  return out.length ? out : [lo];
}

export function formatMs(value) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "–";
  const abs = Math.abs(value);
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  if (abs >= 1) return value.toFixed(2);
  return value.toPrecision(2);
}

// A tick label: the round number as written, without the float noise of its arithmetic.
const tickLabel = (value) => String(Number(value.toPrecision(6)));

function frame(label, xLabel, yLabel) {
  const root = svg("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, width: WIDTH, height: HEIGHT, role: "img",
    "aria-label": label, class: "chart" });
  text(root, MARGIN.left + (WIDTH - MARGIN.left - MARGIN.right) / 2, HEIGHT - 6, xLabel,
    { "text-anchor": "middle", class: "axis-label" });
  text(root, 0, 0, yLabel, { "text-anchor": "middle", class: "axis-label",
    transform: `translate(12 ${MARGIN.top + (HEIGHT - MARGIN.top - MARGIN.bottom) / 2}) rotate(-90)` });
  return root;
}

function axes(root, x, y, xTicks, yTicks, format) {
  const bottom = HEIGHT - MARGIN.bottom;
  const axis = svg("g", { class: "axis" }, root);
  svg("line", { x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: bottom, y2: bottom }, axis);
  svg("line", { x1: MARGIN.left, x2: MARGIN.left, y1: MARGIN.top, y2: bottom }, axis);
  for (const t of xTicks) {
    svg("line", { x1: x(t), x2: x(t), y1: bottom, y2: bottom + 4 }, axis);
    text(axis, x(t), bottom + 16, format(t), { "text-anchor": "middle" });
  }
  for (const t of yTicks) {
    svg("line", { x1: MARGIN.left - 4, x2: MARGIN.left, y1: y(t), y2: y(t) }, axis);
    svg("line", { x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: y(t), y2: y(t), class: "grid" }, axis);
    text(axis, MARGIN.left - 7, y(t) + 4, format(t), { "text-anchor": "end" });
  }
}

// `bins`: {edges: [n + 1 numbers], counts: [n integers]} in milliseconds.
export function histogram(bins, label) {
  const root = frame(label, "median latency (ms)", "architectures");
  const lo = bins.edges[0];
  const hi = bins.edges[bins.edges.length - 1];
  const top = Math.max(1, ...bins.counts);
  const x = linear([lo, hi], [MARGIN.left, WIDTH - MARGIN.right]);
  const y = linear([0, top], [HEIGHT - MARGIN.bottom, MARGIN.top]);
  axes(root, x, y, ticks(lo, hi), ticks(0, top).filter(Number.isInteger), tickLabel);
  const bars = svg("g", { class: "bars" }, root);
  bins.counts.forEach((count, i) => {
    if (count === 0) return;
    const x0 = x(bins.edges[i]);
    const width = Math.max(1, x(bins.edges[i + 1]) - x0 - 1);
    const bar = svg("rect", { x: x0, y: y(count), width, height: y(0) - y(count) }, bars);
    svg("title", {}, bar).textContent =
      `${formatMs(bins.edges[i])}–${formatMs(bins.edges[i + 1])} ms: ${count} architecture${count === 1 ? "" : "s"}`;
  });
  return root;
}

// `points`: [{arch, measured_ms, predicted_ms}]; both axes share one range, with the line predicted = measured.
export function scatter(points, label) {
  const root = frame(label, "measured (ms)", "predicted (ms)");
  const values = points.flatMap((p) => [p.measured_ms, p.predicted_ms]);
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  const pad = (hi - lo) * 0.05 || Math.abs(hi) * 0.05 || 1;
  lo = Math.max(lo - pad, -Number.MAX_VALUE);
  hi = Math.min(hi + pad, Number.MAX_VALUE);
  const x = linear([lo, hi], [MARGIN.left, WIDTH - MARGIN.right]);
  const y = linear([lo, hi], [HEIGHT - MARGIN.bottom, MARGIN.top]);
  axes(root, x, y, ticks(lo, hi), ticks(lo, hi), tickLabel);
  svg("line", { x1: x(lo), y1: y(lo), x2: x(hi), y2: y(hi), class: "diagonal" }, root);
  const dots = svg("g", { class: "dots" }, root);
  for (const p of points) {
    const dot = svg("circle", { cx: x(p.measured_ms), cy: y(p.predicted_ms), r: 3 }, dots);
    svg("title", {}, dot).textContent =
      `${p.arch}\nmeasured ${formatMs(p.measured_ms)} ms, predicted ${formatMs(p.predicted_ms)} ms`;
  }
  return root;
}
