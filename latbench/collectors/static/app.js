// The collector dashboard: log in with the admin token, then poll the management API and draw what it says.
// Read-only: it sends GET requests only. The token lives in this tab's sessionStorage and goes out as the
// Authorization header the CLI uses too.

import { formatMs, histogram, scatter } from "./charts.js";

const TOKEN_KEY = "latbench.adminToken";
const POLL_MS = 2000;
const DETAILS_MIN_MS = 4000;
const CARD_MIN_MS = 15000; // building a campaign's card reads all its results: less often than the charts
const DATASETS_EVERY_MS = 30000;
const RESULTS_LISTED = 8; // slowest and most recent results listed per campaign
const TOP_OPS = 10; // operator types in a result's profile table, as `latbench results show`

const $ = (id) => document.getElementById(id);

const state = {
  generation: 0, // bumped by every log in and log out, so a poll of an earlier session stops itself
  campaigns: [],
  selected: null,
  result: null, // the result whose panel is open
  detailsFor: null,
  detailsDone: -1,
  detailsAt: 0,
  cardDone: -1,
  cardAt: 0,
  datasetsAt: 0,
};

class Refused extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// An element with attributes (`class`, `data-*`, `title` ...) and children (nodes or text).
function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined && value !== false) node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

async function api(path) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const response = await fetch(`/v1${path}`, {
    headers: token ? { Authorization: `Bearer ${token}` } : {},
    cache: "no-store",
  });
  if (!response.ok) {
    let message = response.statusText;
    try {
      message = (await response.json()).message || message;
    } catch {
      // not one of the collector's JSON errors: keep the status text
    }
    throw new Refused(response.status, message);
  }
  return response.json();
}

const path = (...parts) => parts.map(encodeURIComponent).join("/");

function ago(iso) {
  const seconds = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  if (seconds < 60) return `${Math.round(seconds)} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`;
}

// ---- log in and out

function showLogin(message) {
  state.generation += 1;
  $("dashboard").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  $("updated").textContent = "";
  $("login-error").textContent = message || "";
  $("login-error").hidden = !message;
}

function refusal(error) {
  return error instanceof Refused && (error.status === 401 || error.status === 403);
}

async function login(event) {
  event.preventDefault();
  const token = $("token").value.trim();
  if (!token) return;
  sessionStorage.setItem(TOKEN_KEY, token);
  try {
    await api("/admin/devices");
  } catch (error) {
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin(refusal(error) ? `The collector refused this token: ${error.message}` : `Cannot log in: ${error.message}`);
    return;
  }
  $("token").value = "";
  start();
}

function logout() {
  sessionStorage.removeItem(TOKEN_KEY);
  showLogin("");
}

function start() {
  state.generation += 1;
  state.detailsFor = null;
  state.datasetsAt = 0;
  closeResult();
  $("login").hidden = true;
  $("login-error").hidden = true;
  $("dashboard").hidden = false;
  $("logout").hidden = false;
  poll(state.generation);
}

async function poll(generation) {
  if (generation !== state.generation) return;
  try {
    const [devices, campaigns] = await Promise.all([api("/admin/devices"), api("/admin/campaigns")]);
    if (generation !== state.generation) return;
    state.campaigns = campaigns;
    renderDevices(devices);
    renderCampaigns();
    $("poll-error").hidden = true;
    $("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
    await refreshDetails(generation);
    if (Date.now() - state.datasetsAt > DATASETS_EVERY_MS) await refreshDatasets(generation);
  } catch (error) {
    if (generation !== state.generation) return;
    if (refusal(error)) {
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin(`The collector no longer accepts this token: ${error.message}`);
      return;
    }
    pollError(error);
  }
  setTimeout(() => poll(generation), POLL_MS);
}

function pollError(error) {
  $("poll-error").textContent = `Cannot read from the collector: ${error.message} (retrying)`;
  $("poll-error").hidden = false;
}

// ---- devices

function renderDevices(devices) {
  const rows = devices.map((d) => {
    const machine = [d.machine.cpu_model, d.machine.cores_logical && `${d.machine.cores_logical} threads`,
      d.machine.memory_gb && `${Math.round(d.machine.memory_gb)} GB`].filter(Boolean).join(", ");
    return h("tr", { "data-device": d.name, class: d.online ? "online" : "offline" },
      h("td", {}, h("strong", {}, d.name)),
      h("td", { class: "status" }, h("span", { class: "dot" }), d.online ? "online" : "offline"),
      h("td", { title: d.last_seen }, ago(d.last_seen)),
      h("td", {}, h("code", {}, d.fingerprint)),
      h("td", {}, d.runtimes.join(", ")),
      h("td", {}, d.agents.join(", ")),
      h("td", { class: "muted" }, machine));
  });
  $("devices").tBodies[0].replaceChildren(...rows);
  $("devices").hidden = devices.length === 0;
  $("no-devices").hidden = devices.length > 0;
}

// ---- campaigns

function progressBar(p) {
  const bar = h("div", { class: "bar", title: `${p.done} done, ${p.failed} failed, ${p.leased} leased, ${p.queued} queued` });
  for (const part of ["done", "failed", "leased"]) {
    const segment = h("span", { class: part });
    segment.style.width = `${p.total ? (100 * p[part]) / p.total : 0}%`;
    bar.append(segment);
  }
  return bar;
}

function renderCampaign(c) {
  const meta = [c.space, `${c.runtime} / ${c.provider}`, `batch ${c.batch}`, `${c.threads} thread${c.threads === 1 ? "" : "s"}`,
    `${c.samples} architectures`, `created ${ago(c.created_at)}`];
  if (c.state === "building") meta.push(`artifacts ${c.artifacts_ready} / ${c.samples}`);
  const rows = c.devices.map((p) => h("tr", { "data-device": p.device },
    h("td", {}, p.device),
    h("td", { class: "progress" }, progressBar(p)),
    h("td", { class: "num" }, h("span", { class: "done-count" }, p.done), " / ", h("span", { class: "total" }, p.total)),
    h("td", { class: "num failed-count" }, p.failed),
    h("td", { class: "num" }, p.leased),
    h("td", { class: "num" }, p.rate_per_min === null ? "–" : `${p.rate_per_min.toFixed(1)}/min`),
    h("td", { class: "num" }, p.eta_s === null ? "–" : duration(p.eta_s))));
  const reasons = c.devices.flatMap((p) => (p.failures || []).map((f) =>
    h("li", { class: "failure", "data-device": p.device },
      h("strong", {}, p.device), `: ${f.jobs} job${f.jobs === 1 ? "" : "s"} failed: `, h("code", {}, f.error))));
  const table = rows.length
    ? h("table", { class: "progress-table" },
      h("thead", {}, h("tr", {}, ...["device", "progress", "done", "failed", "leased", "rate", "ETA"].map((t) => h("th", {}, t)))),
      h("tbody", {}, rows))
    : h("p", { class: "muted" }, "No device has joined yet: agents join when they ask for work.");
  const card = h("article", { class: `campaign${c.campaign_id === state.selected ? " selected" : ""}`,
    "data-campaign": c.campaign_id, "data-state": c.state, tabindex: 0 },
  h("div", { class: "campaign-head" },
    h("strong", {}, c.name || c.campaign_id),
    h("span", { class: `badge ${c.state}` }, c.state),
    c.name ? h("code", { class: "muted" }, c.campaign_id) : null),
  h("p", { class: "muted" }, meta.join(" · ")),
  c.error ? h("p", { class: "campaign-error" }, c.error) : null,
  table,
  reasons.length ? h("ul", { class: "failures" }, reasons) : null,
  adaptiveCurves(c));
  card.addEventListener("click", () => select(c.campaign_id));
  card.addEventListener("keydown", (event) => event.key === "Enter" && select(c.campaign_id));
  return card;
}

// A learning curve's points: results, estimated SRCC ± its spread, and where random check results came in (the
// verification batch before a target stop), how many the results then held.
function curveText(curve) {
  return curve.map((p, i) => {
    const checked = (p.checks || 0) > ((i && curve[i - 1].checks) || 0) ? ` (${p.checks} checks)` : "";
    return `${p.results} → ${p.srcc.toFixed(3)} ± ${p.srcc_std.toFixed(3)}${checked}`;
  }).join(", ");
}

// An adaptive campaign's learning curve per device: results, estimated SRCC ± its spread, and how it stopped.
function adaptiveCurves(c) {
  if (!c.adaptive) return null;
  const plan = `adaptive: target SRCC ${c.adaptive.target_srcc}, budget ${c.adaptive.budget}, batches of ${c.adaptive.batch}`;
  const rows = (c.adaptive_devices || []).map((d) => h("li", { class: "learning-curve", "data-device": d.device },
    h("strong", {}, d.device), " ",
    d.stop ? `stopped (${d.stop})` : d.state, ": ",
    curveText(d.curve) || "first batch",
    d.model ? ` · model ${d.model}` : "",
    d.error ? ` · ${d.error}` : "",
    d.caveat ? h("span", { class: "caveat" }, ` · ${d.caveat}`) : ""));
  return h("div", { class: "adaptive" }, h("p", { class: "muted" }, plan), h("ul", {}, ...rows));
}

// The states a campaign stays in: the dashboard first selects one still under way.
const FINISHED = ["done", "failed", "cancelled"];

function renderCampaigns() {
  const campaigns = [...state.campaigns].reverse(); // newest first
  if (!campaigns.some((c) => c.campaign_id === state.selected)) {
    state.selected = (campaigns.find((c) => !FINISHED.includes(c.state)) || campaigns[0] || {}).campaign_id || null;
  }
  $("campaigns").replaceChildren(...campaigns.map(renderCampaign));
  $("no-campaigns").hidden = campaigns.length > 0;
}

function select(campaignId) {
  if (campaignId !== state.selected) closeResult();
  state.selected = campaignId;
  renderCampaigns();
  refreshDetails(state.generation).catch(pollError);
}

// ---- latency charts and the campaign's dataset card

async function refreshDetails(generation) {
  const c = state.campaigns.find((x) => x.campaign_id === state.selected);
  if (!c) {
    $("details").hidden = true;
    return;
  }
  const done = c.devices.reduce((n, p) => n + p.done, 0);
  const now = Date.now();
  const same = state.detailsFor === c.campaign_id;
  const chartsDue = !same || (done !== state.detailsDone && now - state.detailsAt >= DETAILS_MIN_MS);
  const cardDue = !same || (done !== state.cardDone && now - state.cardAt >= CARD_MIN_MS);
  if (!chartsDue && !cardDue) return;
  state.detailsFor = c.campaign_id;
  if (chartsDue) Object.assign(state, { detailsDone: done, detailsAt: now });
  if (cardDue) Object.assign(state, { cardDone: done, cardAt: now });
  const id = c.campaign_id;
  let bins, card, predictions, listed;
  try {
    [bins, card, listed] = await Promise.all([
      chartsDue ? api(`/admin/campaigns/${path(id)}/latency-histogram`) : null,
      cardDue ? api(`/admin/campaigns/${path(id)}/card`) : null,
      chartsDue ? api(`/admin/campaigns/${path(id)}/result-list?n=${RESULTS_LISTED}`) : null,
    ]);
    predictions = bins ? await Promise.all(
      bins.devices.map((d) => api(`/admin/campaigns/${path(id, "devices", d.device)}/predictions`))) : [];
  } catch (error) {
    state.detailsFor = null; // fetch everything again next time
    throw error;
  }
  if (generation !== state.generation || state.selected !== id) return;
  $("details-title").textContent = c.name || c.campaign_id;
  if (bins) {
    const panels = bins.devices.map((d, i) => devicePanel(d, predictions[i]));
    $("charts").replaceChildren(...(panels.length ? panels : [h("p", { class: "muted" }, "No finished results yet.")]));
  }
  if (listed) renderResultLists(listed);
  if (card) {
    $("campaign-card").replaceChildren(card.card ? renderCard(card.card) : h("p", { class: "muted" }, card.reason));
  }
  $("details").hidden = false;
}

function devicePanel(bins, predicted) {
  const figures = `${bins.n} architectures · min ${formatMs(bins.min_ms)} · median ${formatMs(bins.median_ms)} · max ${formatMs(bins.max_ms)} ms`;
  let comparison;
  if (predicted.available && predicted.points.length) {
    const quality = predicted.srcc === null ? "" : ` · SRCC ${predicted.srcc.toFixed(3)}`;
    comparison = h("figure", { class: "scatter" },
      scatter(predicted.points, `measured against predicted latency on ${bins.device}`),
      h("figcaption", {}, `predictor ${predicted.model}${quality}`));
  } else {
    comparison = h("div", { class: "no-predictor" }, predicted.reason || "no predictions yet");
  }
  return h("div", { class: "device-charts", "data-device": bins.device },
    h("h3", {}, bins.device),
    h("p", { class: "muted" }, figures),
    h("div", { class: "chart-row" },
      h("figure", { class: "histogram" }, histogram(bins, `latency histogram of ${bins.device}`),
        h("figcaption", {}, "distribution of median latencies")),
      comparison));
}

function renderCard(card) {
  const devices = card.devices.map((d) => h("tr", {},
    h("td", {}, d.name),
    h("td", { class: "num" }, d.measured),
    h("td", { class: "num" }, `${(100 * d.coverage).toFixed(1)}%`),
    h("td", {}, [d.runtime, d.runtime_version, d.provider].filter(Boolean).join(" ")),
    h("td", { class: "num" }, d.batch ?? "–"),
    h("td", { class: "num" }, d.threads ?? "–"),
    h("td", { class: "num" }, d.quality.median_cv ?? "–"),
    h("td", { class: "num" }, d.quality.unstable ?? "–"),
    h("td", {}, d.source)));
  const warnings = card.devices.filter((d) => d.quality.stability)
    .map((d) => h("p", { class: "warning" }, `${d.name}: ${d.quality.stability}`));
  const provenance = Object.entries(card.provenance).filter(([key]) => key !== "notice")
    .map(([key, value]) => h("li", {}, h("span", { class: "muted" }, `${key}: `), typeof value === "object" ? JSON.stringify(value) : String(value)));
  return h("div", { class: "dataset-card", "data-dataset": card.name },
    h("p", {}, h("strong", {}, card.name), ` · ${card.space} · ${card.n_archs} architectures · ${card.devices.length} devices`),
    h("table", {},
      h("thead", {}, h("tr", {}, ...["device", "measured", "coverage", "runtime", "batch", "threads", "median CV", "unstable", "source"].map((t) => h("th", {}, t)))),
      h("tbody", {}, devices)),
    ...warnings,
    h("ul", { class: "provenance" }, provenance, h("li", {}, h("span", { class: "muted" }, "content SHA-256: "), h("code", {}, card.content_sha256))));
}

// ---- one campaign's results, and one result's figures and profile

function renderResultLists(listed) {
  const lists = [["slowest", "slowest"], ["recent", "most recent"]].map(([key, title]) => h("div",
    { class: "result-list", "data-list": key },
    h("h4", {}, `${title} (of ${listed.total})`),
    listed[key].length
      ? h("table", {},
        h("thead", {}, h("tr", {}, ...["architecture / model", "device", "median ms", "stability", ""].map((t) => h("th", {}, t)))),
        h("tbody", {}, listed[key].map(resultRow)))
      : h("p", { class: "muted" }, "No finished results yet.")));
  $("result-lists").replaceChildren(...lists);
}

function resultRow(r) {
  const row = h("tr", { class: `result${r.result_id === state.result ? " selected" : ""}`, "data-result": r.result_id, tabindex: 0 },
    h("td", { class: "arch", title: r.arch }, r.arch),
    h("td", {}, r.device),
    h("td", { class: "num" }, formatMs(r.latency_ms)),
    h("td", { class: r.stable ? "stable" : "unstable", title: r.flags.join(", ") },
      r.stable ? "stable" : "unstable", r.flags.length ? h("span", { class: "muted" }, ` ${r.flags.join(", ")}`) : null),
    h("td", { class: "muted" }, r.profiled ? "profile" : ""));
  row.addEventListener("click", () => showResult(r.result_id));
  row.addEventListener("keydown", (event) => event.key === "Enter" && showResult(r.result_id));
  return row;
}

function closeResult() {
  state.result = null;
  $("result-panel").hidden = true;
  $("result-panel").replaceChildren();
}

async function showResult(resultId) {
  state.result = resultId;
  for (const row of document.querySelectorAll("#result-lists tr.result")) {
    row.classList.toggle("selected", row.dataset.result === resultId);
  }
  const generation = state.generation;
  let content;
  try {
    content = renderResult(await api(`/admin/results/${path(resultId)}/summary?top=${TOP_OPS}`));
  } catch (error) {
    content = h("p", { class: "error" }, `Cannot read this result: ${error.message}`);
  }
  if (generation !== state.generation || state.result !== resultId) return;
  $("result-panel").replaceChildren(content);
  $("result-panel").hidden = false;
}

const fixed = (value, digits, unit = "") =>
  value === null || value === undefined ? "–" : `${value.toFixed(digits)}${unit}`;

// The figures of `latbench results show`, formatted as it prints them; the operator table comes as printed.
function renderResult(r) {
  const stability = r.stable === false
    ? `unstable: ${r.flag_words.join("; ") || "flagged by the stability checks"}`
    : ["stable", ...r.flag_words].join("; ");
  const figures = [
    ["median", fixed(r.latency_ms, 3, " ms")], ["mean", fixed(r.mean_ms, 3, " ms")],
    ["min", fixed(r.min_ms, 3, " ms")], ["max", fixed(r.max_ms, 3, " ms")],
    ["runs", r.runs ?? "–"], ["CV", fixed(r.cv, 3)],
    ["load", fixed(r.load_ms, 3, " ms")], ["first run", fixed(r.first_run_ms, 3, " ms")],
    ["peak memory", fixed(r.peak_rss_mb, 1, " MiB")], ["waited for quiet", fixed(r.idle_waited_s, 1, " s") + (r.idle_load === null || r.idle_load === undefined ? ""
      : `, then other programs kept ${r.idle_load.toFixed(2)} cores busy`)],
    ["stability", stability],
  ].map(([name, value]) => h("div", { "data-figure": name }, h("dt", {}, name), h("dd", {}, value)));
  const environment = Object.entries(r.environment).filter(([, value]) => value !== null && value !== "")
    .map(([key, value]) => h("li", {}, h("span", { class: "muted" }, `${key.replace(/^env_/, "")}: `), String(value)));
  let profile;
  if (r.op_table) {
    profile = h("figure", { class: "op-table" },
      h("figcaption", {}, r.op_table.title),
      h("table", {},
        h("thead", {}, h("tr", {}, ...r.op_table.columns.map((c, i) => h("th", { class: i ? "num" : null }, c)))),
        h("tbody", {}, r.op_table.rows.map((cells) => h("tr", { "data-op": cells[0] },
          ...cells.map((cell, i) => h("td", { class: i ? "num" : null }, cell)))))));
  } else {
    profile = h("p", { class: "no-profile muted" }, "no profile (measure with --profile)");
  }
  return h("div", { class: "result-details", "data-result": r.result_id },
    h("div", { class: "result-head" },
      h("strong", { class: "arch", title: r.arch }, r.arch),
      h("span", { class: "muted" }, ` ${r.device} · ${r.runtime} / ${r.provider} · agent ${r.agent} · measured ${r.measured_at}`),
      h("button", { type: "button", class: "close" }, "Close")),
    h("dl", { class: "figures" }, figures),
    h("ul", { class: "environment" }, environment),
    profile);
}

// ---- datasets

async function refreshDatasets(generation) {
  state.datasetsAt = Date.now();
  const listed = await api("/admin/datasets");
  if (generation !== state.generation) return;
  const items = listed.datasets.map((s) => {
    const item = h("button", { type: "button", class: "dataset", "data-dataset": s.name },
      h("strong", {}, s.name), h("span", { class: "muted" }, s.builtin ? " built in" : ` ${s.kind}`),
      h("br"), `${s.space} · ${s.devices.length} devices · ${s.n_archs} architectures`);
    item.addEventListener("click", () => showDataset(s.name));
    return item;
  });
  $("datasets").replaceChildren(...items, ...(listed.reason ? [h("p", { class: "error" }, listed.reason)] : []));
}

async function showDataset(name) {
  try {
    $("dataset-card").replaceChildren(renderCard(await api(`/admin/datasets/${path(name)}`)));
  } catch (error) {
    $("dataset-card").replaceChildren(h("p", { class: "error" }, error.message));
  }
}

// ---- start

async function init() {
  $("login-form").addEventListener("submit", login);
  $("result-panel").addEventListener("click", (event) => event.target.closest("button.close") && closeResult());
  $("logout").addEventListener("click", logout);
  api("/health").then((health) => { $("version").textContent = `v${health.version}`; }).catch(() => {});
  if (sessionStorage.getItem(TOKEN_KEY)) start();
  else showLogin("");
}

init();
