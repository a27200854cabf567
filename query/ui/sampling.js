// tracehouse web UI, Sampling page: the strategies SDKs get now and how adaptive sampling moved.
// Plain JavaScript like app.js, whose helpers ($, el, svgEl, api, setStatus) it uses; one call
// to GET /api/sampling/strategies (query/sampling_overview_http.py) per view.
"use strict";

// Three significant digits without trailing zeros: 0.5 -> "0.5", 1/60 -> "0.0167".
const fmtNum = (v) => String(Number(v.toPrecision(3)));
const fmtProbability = (p) => (p === null ? "–" : p >= 0.01 ? fmtNum(p * 100) + " %" : fmtNum(p));
const SOURCE_LABEL = { file: "strategies file", adaptive: "adaptive", default: "default strategy" };

function strategySummary(s) {
  const rows = [];
  if (s.strategyType === "RATE_LIMITING") rows.push(["type", `rate limiting: ${s.rateLimitingSampling.maxTracesPerSecond} traces/s`]);
  else rows.push(["type", `probabilistic: ${fmtProbability(s.probabilisticSampling.samplingRate)}`]);
  const ops = s.operationSampling;
  if (ops) {
    rows.push(["default probability", fmtProbability(ops.defaultSamplingProbability)]);
    rows.push(["lower bound", `${fmtNum(ops.defaultLowerBoundTracesPerSecond)} traces/s per operation`]);
    if (ops.defaultUpperBoundTracesPerSecond) rows.push(["upper bound", `${fmtNum(ops.defaultUpperBoundTracesPerSecond)} traces/s`]);
    rows.push(["per-operation probabilities", String(ops.perOperationStrategies.length)]);
  }
  return rows;
}

// One small chart per operation: the probability in force (blue, log scale: adaptive values
// span 1e-5..1) and the spans/s the pipeline observed (orange, linear, right-hand scale),
// both over the lookback, one point per calculation interval.
function samplingChart(op, start, end) {
  const W = 380, H = 96, L = 44, R = 52, T = 8, B = 16;
  const svg = svgEl("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, class: "sampling-chart", role: "img",
    "aria-label": `${op.operation}: probability and observed spans/s` });
  const X = (t) => L + (t - start) / Math.max(1, end - start) * (W - L - R);
  svg.append(svgEl("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#ccd" }));
  const text = (x, y, s, attrs = {}) => { const t = svgEl("text", { x, y, ...attrs }); t.textContent = s; svg.append(t); };
  text(L, H - 3, new Date(start * 1000).toLocaleTimeString());
  text(W - R, H - 3, new Date(end * 1000).toLocaleTimeString(), { "text-anchor": "end" });
  const series = (points, value, y, color, fmt, name) => {
    if (!points.length) return;
    svg.append(svgEl("polyline", { fill: "none", stroke: color, "stroke-width": 1.5, class: name,
      points: points.map((p) => `${X(p.time).toFixed(1)},${y(value(p)).toFixed(1)}`).join(" ") }));
    for (const p of points) {
      const dot = svgEl("circle", { cx: X(p.time).toFixed(1), cy: y(value(p)).toFixed(1), r: 2, fill: color });
      const tip = svgEl("title"); tip.textContent = `${new Date(p.time * 1000).toLocaleString()}: ${fmt(value(p))}`;
      dot.append(tip); svg.append(dot);
    }
  };
  const ps = op.history.map((p) => p.probability).filter((p) => p > 0);
  const lo = Math.floor(Math.log10(Math.min(...ps, 0.1))), span = Math.max(1, -lo);
  const Yp = (p) => T + (H - T - B) * Math.min(1, -Math.log10(Math.max(p, 10 ** lo)) / span);
  const rMax = Math.max(...op.throughput.map((p) => p.spansPerSecond), 1e-9);
  const Yr = (r) => H - B - r / rMax * (H - T - B);
  text(2, T + 4, "100 %", { fill: "#2f6fed" });
  text(2, H - B, fmtProbability(10 ** lo), { fill: "#2f6fed" });
  text(W - 2, T + 4, `${fmtNum(rMax)}/s`, { "text-anchor": "end" });
  series(op.history, (p) => p.probability, Yp, "#2f6fed", fmtProbability, "probability");
  series(op.throughput, (p) => p.spansPerSecond, Yr, "#f28e2b", (v) => `${fmtNum(v)} spans/s`, "throughput");
  return svg;
}

function serviceCard(s, data) {
  const summary = strategySummary(s.strategy);
  const ops = s.operations.map((op) => {
    const last = op.history.length ? op.history[op.history.length - 1] : null;
    const seen = op.throughput.length ? op.throughput[op.throughput.length - 1].spansPerSecond : null;
    const hasData = op.history.length || op.throughput.length;
    return el("tr", { class: "sampling-op", "data-operation": op.operation, "data-probability": String(op.probability) },
      el("td", {}, op.operation),
      el("td", {}, fmtProbability(op.probability)),
      el("td", {}, last ? `${fmtNum(last.sampledPerSecond)} / ${fmtNum(last.targetPerSecond)}` : "–"),
      el("td", {}, seen === null ? "–" : fmtNum(seen)),
      el("td", {}, hasData ? samplingChart(op, data.start, data.end) : el("span", { class: "meta" }, "no data in this range")));
  });
  return el("div", { class: "panel sampling-service", "data-service": s.service, "data-source": s.source },
    el("h2", {}, s.service, " ", el("span", { class: "badge" + (s.source === "adaptive" ? " adaptive" : "") }, SOURCE_LABEL[s.source])),
    el("table", { class: "kv sampling-summary" }, ...summary.map(([k, v]) => el("tr", {}, el("td", {}, k), el("td", {}, v)))),
    ops.length
      ? el("table", { class: "kv sampling-ops" },
        el("tr", {}, ...["operation", "probability now", "sampled/s (last calc.) / target", "observed spans/s (last)",
          "probability (blue) and observed spans/s (orange)"].map((h) => el("th", {}, h))), ...ops)
      : el("div", { class: "meta" }, "No operations seen in this range; every operation gets the strategy above."));
}

let samplingSeq = 0;  // a newer request supersedes a slower older one
async function showSampling(ev) {
  if (ev) ev.preventDefault();
  const seq = ++samplingSeq;
  const lookback = $("#sampling-lookback").value, service = $("#sampling-service").value;
  const params = new URLSearchParams({ lookback });
  if (service) params.set("service", service);
  setStatus("loading sampling…");
  let data;
  try { data = await api("/api/sampling/strategies?" + params); } catch (e) { setStatus(e.message); return; }
  if (seq !== samplingSeq) return;
  setStatus("");
  const box = $("#sampling-view");
  if (!service) {  // the service list follows what the unfiltered answer holds
    const names = data.services.map((s) => s.service);
    $("#sampling-service").replaceChildren(el("option", { value: "" }, "all"), ...names.map((n) => el("option", { value: n }, n)));
  }
  const head = el("div", { class: "panel meta" },
    `Adaptive sampling ${data.adaptive ? "on" : "off"} · calculated every ${data.intervalSeconds} s · `,
    `services not listed get the default strategy: ${strategySummary(data.default).map(([k, v]) => (k === "type" ? v : `${k} ${v}`)).join(", ")}`,
    ...(data.truncated ? [el("div", { class: "warn" }, "Too many points: the oldest series were cut.")] : []));
  box.replaceChildren(head, ...(data.services.length
    ? data.services.map((s) => serviceCard(s, data))
    : [el("div", { class: "empty" }, "No service has a strategy of its own or sampling data in this range.")]));
  box.dataset.lookback = lookback;
}

document.addEventListener("DOMContentLoaded", () => {
  $("#sampling-form").addEventListener("submit", showSampling);
  $("#sampling-lookback").addEventListener("change", showSampling);
  $("#sampling-service").addEventListener("change", showSampling);
});
