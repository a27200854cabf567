// tracehouse web UI: plain JavaScript, no build step. Talks only to the Jaeger-compatible API.
"use strict";

const $ = (sel) => document.querySelector(sel);
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
};
const svgEl = (tag, attrs = {}) => {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
};
const COLORS = ["#4e79a7", "#59a14f", "#9c755f", "#b07aa1", "#76b7b2", "#edc948", "#ff9da7", "#bab0ac", "#e15759", "#f28e2b"];
const serviceColor = (() => { const m = new Map(); return (s) => { if (!m.has(s)) m.set(s, COLORS[m.size % COLORS.length]); return m.get(s); }; })();

function fmtDuration(us) {
  if (us >= 1e6) return (us / 1e6).toFixed(2) + "s";
  if (us >= 1e3) return (us / 1e3).toFixed(2) + "ms";
  return us + "µs";
}
function setStatus(text) { $("#status").textContent = text || ""; }

async function api(path) {
  const resp = await fetch(path, { headers: authHeaders() });
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error((body.errors && body.errors[0] && body.errors[0].msg) || resp.statusText);
  return body.data;
}
function authHeaders() {
  const token = localStorage.getItem("tracehouse.token");
  return token ? { Authorization: "Bearer " + token } : {};
}

// ---------------------------------------------------------------- search
async function loadServices(select) {
  const services = await api("/api/services");
  select.replaceChildren(...services.map((s) => el("option", { value: s }, s)));
  return services;
}
async function loadOperations() {
  const service = $("#service").value;
  const ops = service ? await api(`/api/services/${encodeURIComponent(service)}/operations`) : [];
  $("#operation").replaceChildren(el("option", { value: "" }, "all"), ...ops.map((o) => el("option", { value: o }, o)));
}
// Tags as typed in the box: key=value pairs separated by spaces; a value with spaces is quoted
// (note="two words"). Sent as Jaeger's tags JSON object; the API matches values as text.
function parseTagInput(text) {
  const tags = {};
  for (const m of text.matchAll(/([^\s=]+)=(?:"([^"]*)"|(\S*))/g)) tags[m[1]] = m[2] !== undefined ? m[2] : m[3];
  return tags;
}
async function search(ev) {
  if (ev) ev.preventDefault();
  const params = new URLSearchParams({ service: $("#service").value, lookback: $("#lookback").value, limit: $("#limit").value });
  if ($("#operation").value) params.set("operation", $("#operation").value);
  if ($("#minDuration").value) params.set("minDuration", $("#minDuration").value);
  if ($("#maxDuration").value) params.set("maxDuration", $("#maxDuration").value);
  const tags = parseTagInput($("#tags").value);
  if (Object.keys(tags).length) params.set("tags", JSON.stringify(tags));
  setStatus("searching…");
  try {
    const traces = await api("/api/traces?" + params);
    renderResults(traces);
    setStatus("");
  } catch (e) { setStatus(e.message); }
}
function traceSummary(t) {
  const spans = t.spans;
  const start = Math.min(...spans.map((s) => s.startTime));
  const end = Math.max(...spans.map((s) => s.startTime + s.duration));
  const ids = new Set(spans.map((s) => s.spanID));
  const root = spans.find((s) => !s.references.some((r) => r.refType === "CHILD_OF" && ids.has(r.spanID))) || spans[0];
  const errors = spans.filter((s) => s.tags.some((g) => g.key === "error" && g.value === true)).length;
  const services = new Set(spans.map((s) => t.processes[s.processID].serviceName));
  return { start, end, duration: end - start, root, errors, services };
}
function renderResults(traces) {
  const box = $("#results");
  if (!traces.length) { box.replaceChildren(el("div", { class: "empty" }, "No traces found.")); return; }
  const compare = el("button", { id: "compare", type: "button", disabled: "", onclick: () => {
    const ids = [...document.querySelectorAll(".pick:checked")].map((c) => c.value);
    location.hash = "#/compare/" + ids.join("/");
  } }, "Compare 2 selected");
  const onPick = () => {
    const picked = document.querySelectorAll(".pick:checked").length;
    compare.disabled = picked !== 2;
  };
  box.replaceChildren(el("div", { class: "meta results-head" }, el("span", { id: "result-count" }, `${traces.length} traces`), compare),
    ...traces.map((t) => {
      const s = traceSummary(t);
      const rootService = t.processes[s.root.processID].serviceName;
      const pick = el("input", { type: "checkbox", class: "pick", value: t.traceID, title: "select for compare",
        onclick: (ev) => { ev.stopPropagation(); onPick(); } });
      return el("div", { class: "result", "data-trace-id": t.traceID, onclick: () => { location.hash = "#/trace/" + t.traceID; } },
        el("div", { class: "title" }, pick, `${rootService}: ${s.root.operationName}`),
        el("div", {}, fmtDuration(s.duration)),
        el("div", { class: "meta" }, `${t.spans.length} spans · `, ...[...s.services].map((n) => el("span", { class: "badge" }, n)),
          ...(s.errors ? [el("span", { class: "badge err" }, `${s.errors} errors`)] : [])),
        el("div", { class: "meta" }, new Date(s.start / 1000).toLocaleString() + " · " + t.traceID));
    }));
}

// ---------------------------------------------------------------- compare
// Two traces side by side: their summaries, then every (service, operation) with its span
// count in each, so a missing call, an extra retry or a new service stands out.
async function showCompare(a, b) {
  const box = $("#compare-view");
  setStatus("loading traces…");
  let traces;
  try { traces = await api(`/api/traces?traceID=${encodeURIComponent(a)}&traceID=${encodeURIComponent(b)}`); }
  catch (e) { setStatus(e.message); box.replaceChildren(el("div", { class: "empty" }, e.message)); return; }
  setStatus("");
  const byId = new Map(traces.map((t) => [t.traceID, t]));
  const pair = [byId.get(a), byId.get(b)];
  const missing = [a, b].filter((id, i) => !pair[i]);
  if (missing.length) { box.replaceChildren(el("div", { class: "empty" }, `Trace not found: ${missing.join(", ")}`)); return; }
  const counts = pair.map((t) => {
    const m = new Map();
    for (const s of t.spans) {
      const key = `${t.processes[s.processID].serviceName}\u0000${s.operationName}`;
      m.set(key, (m.get(key) || 0) + 1);
    }
    return m;
  });
  const keys = [...new Set([...counts[0].keys(), ...counts[1].keys()])].sort();
  const head = el("div", { class: "compare-head" }, ...pair.map((t, i) => {
    const s = traceSummary(t);
    return el("div", { class: "panel", "data-side": i ? "b" : "a" },
      el("h3", {}, el("a", { href: "#/trace/" + t.traceID }, `${i ? "B" : "A"} · ${t.processes[s.root.processID].serviceName}: ${s.root.operationName}`)),
      el("div", { class: "meta" }, `${t.traceID} · ${fmtDuration(s.duration)} · ${t.spans.length} spans · ${s.services.size} services`));
  }));
  const rows = keys.map((k) => {
    const [service, op] = k.split("\u0000");
    const ca = counts[0].get(k) || 0, cb = counts[1].get(k) || 0;
    const cls = !ca ? "only-b" : !cb ? "only-a" : ca === cb ? "same" : "changed";
    return el("tr", { class: "cmp-row " + cls, "data-service": service, "data-operation": op, "data-a": ca, "data-b": cb },
      el("td", {}, service), el("td", {}, op), el("td", {}, ca), el("td", {}, cb), el("td", {}, cb - ca > 0 ? "+" + (cb - ca) : String(cb - ca)));
  });
  box.replaceChildren(head, el("table", { class: "kv panel", id: "compare-table" },
    el("tr", {}, ...["service", "operation", "spans in A", "spans in B", "B − A"].map((h) => el("th", {}, h))), ...rows));
}

// ---------------------------------------------------------------- trace view
// Critical path: walking back from the end of a span, the child that finished last before
// the cursor is on the path; time not covered by such children is the span's own.
function criticalPath(spans) {
  const byId = new Map(spans.map((s) => [s.spanID, s]));
  const children = new Map();
  let roots = [];
  for (const s of spans) {
    const parent = s.references.find((r) => r.refType === "CHILD_OF" && byId.has(r.spanID));
    if (parent) { if (!children.has(parent.spanID)) children.set(parent.spanID, []); children.get(parent.spanID).push(s); }
    else roots.push(s);
  }
  const segments = [];
  const walk = (span, bound) => {
    let cursor = Math.min(span.startTime + span.duration, bound);
    const kids = (children.get(span.spanID) || []).slice().sort((a, b) => (b.startTime + b.duration) - (a.startTime + a.duration));
    for (const child of kids) {
      if (cursor <= span.startTime) break;
      const childEnd = Math.min(child.startTime + child.duration, cursor);
      if (child.startTime >= cursor || childEnd <= span.startTime) continue;
      if (childEnd < cursor) segments.push({ spanID: span.spanID, start: childEnd, end: cursor });
      walk(child, childEnd);
      cursor = Math.max(child.startTime, span.startTime);
    }
    if (cursor > span.startTime) segments.push({ spanID: span.spanID, start: span.startTime, end: cursor });
  };
  roots.sort((a, b) => (b.startTime + b.duration) - (a.startTime + a.duration));
  if (roots.length) walk(roots[0], Infinity);
  return segments;
}

function orderedTree(spans) {
  const ids = new Set(spans.map((s) => s.spanID));
  const kids = new Map();
  const roots = [];
  for (const s of spans) {
    const p = s.references.find((r) => r.refType === "CHILD_OF" && ids.has(r.spanID));
    if (p) { if (!kids.has(p.spanID)) kids.set(p.spanID, []); kids.get(p.spanID).push(s); } else roots.push(s);
  }
  const out = [];
  const visit = (s, depth) => {
    out.push({ span: s, depth });
    (kids.get(s.spanID) || []).sort((a, b) => a.startTime - b.startTime).forEach((c) => visit(c, depth + 1));
  };
  roots.sort((a, b) => a.startTime - b.startTime).forEach((r) => visit(r, 0));
  return out;
}

async function showTrace(traceId) {
  setStatus("loading trace…");
  let trace;
  try { [trace] = await api("/api/traces/" + encodeURIComponent(traceId)); }
  catch (e) { setStatus(e.message); $("#waterfall").replaceChildren(el("div", { class: "empty" }, e.message)); return; }
  setStatus("");
  const s = traceSummary(trace);
  const critical = criticalPath(trace.spans);
  const critBySpan = new Map();
  for (const seg of critical) { if (!critBySpan.has(seg.spanID)) critBySpan.set(seg.spanID, []); critBySpan.get(seg.spanID).push(seg); }
  $("#trace-header").replaceChildren(
    el("h2", {}, `${trace.processes[s.root.processID].serviceName}: ${s.root.operationName}`),
    el("div", { class: "meta" }, `Trace ${trace.traceID} · started ${new Date(s.start / 1000).toLocaleString()} · duration ${fmtDuration(s.duration)} · `,
      el("span", { id: "span-count" }, `${trace.spans.length} spans`), ` · ${s.services.size} services`,
      ...(s.errors ? [" · ", el("span", { class: "badge err" }, `${s.errors} errors`)] : [])),
    ...(trace.warnings ? trace.warnings.map((w) => el("div", { class: "meta" }, "⚠ " + w)) : []));
  const total = Math.max(s.duration, 1);
  const pct = (us) => ((us - s.start) / total * 100).toFixed(3) + "%";
  const rows = orderedTree(trace.spans).map(({ span, depth }) => {
    const service = trace.processes[span.processID].serviceName;
    const isErr = span.tags.some((g) => g.key === "error" && g.value === true);
    const track = el("div", { class: "wf-track" },
      Object.assign(el("div", { class: "wf-bar" + (isErr ? " err" : ""), title: `${span.operationName} ${fmtDuration(span.duration)}` }),
        { style: `left:${pct(span.startTime)};width:${(span.duration / total * 100).toFixed(3)}%;background:${serviceColor(service)}` }),
      ...(critBySpan.get(span.spanID) || []).map((seg) => Object.assign(el("div", { class: "wf-crit", title: "critical path" }),
        { style: `left:${pct(seg.start)};width:${((seg.end - seg.start) / total * 100).toFixed(3)}%` })),
      Object.assign(el("span", { class: "wf-dur" }, fmtDuration(span.duration)),
        { style: (span.startTime + span.duration - s.start) / total > 0.85
          ? `right:calc(${(100 - (span.startTime - s.start) / total * 100).toFixed(3)}% + 4px)`
          : `left:calc(${pct(span.startTime + span.duration)} + 4px)` }));
    return el("div", { class: "wf-row", "data-span-id": span.spanID, onclick: (ev) => showSpan(trace, span, ev.currentTarget) },
      Object.assign(el("div", { class: "wf-name" }, el("span", { class: "svc" }, service), span.operationName),
        { style: `padding-left:${6 + depth * 14}px` }),
      track);
  });
  const axis = el("div", { class: "wf-axis" }, el("div", {}, "Service · operation"),
    el("div", {}, `0 — ${fmtDuration(s.duration)} (yellow: critical path)`));
  $("#waterfall").replaceChildren(axis, ...rows);
  $("#span-detail").hidden = true;
}

function kvTable(pairs) {
  return el("table", { class: "kv" }, ...pairs.map(([k, v]) => el("tr", {}, el("td", {}, k), el("td", {}, typeof v === "string" ? v : JSON.stringify(v)))));
}
function showSpan(trace, span, row) {
  document.querySelectorAll(".wf-row.selected").forEach((r) => r.classList.remove("selected"));
  row.classList.add("selected");
  const proc = trace.processes[span.processID];
  const box = $("#span-detail");
  box.hidden = false;
  box.replaceChildren(
    el("h3", {}, `${proc.serviceName}: ${span.operationName}`),
    kvTable([["span id", span.spanID], ["start", new Date(span.startTime / 1000).toISOString()], ["duration", fmtDuration(span.duration)],
      ...span.references.map((r) => [r.refType, r.spanID])]),
    ...(span.warnings ? [el("div", { class: "warn" }, ...span.warnings.map((w) => el("div", {}, "⚠ " + w)))] : []),
    el("h4", {}, "Tags"), kvTable(span.tags.map((t) => [t.key, t.value])),
    el("h4", {}, "Process"), kvTable(proc.tags.map((t) => [t.key, t.value])),
    ...(span.logs.length ? [el("h4", {}, "Events"), ...span.logs.map((l) => kvTable([["time", new Date(l.timestamp / 1000).toISOString()], ...l.fields.map((f) => [f.key, f.value])]))] : []));
}

// ---------------------------------------------------------------- RED charts
function lineChart(title, points, key, fmt) {
  const W = 420, H = 150, P = 34;
  const svg = svgEl("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title });
  const xs = points.map((p) => p.ts), ys = points.map((p) => p[key] || 0);
  const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 1), yMax = Math.max(...ys, 1e-9);
  const X = (x) => P + (x - x0) / (x1 - x0) * (W - P - 8), Y = (y) => H - 18 - y / yMax * (H - 30);
  svg.append(svgEl("line", { x1: P, y1: H - 18, x2: W - 8, y2: H - 18, stroke: "#ccd" }));
  const label = svgEl("text", { x: 2, y: 12 }); label.textContent = fmt(yMax); svg.append(label);
  if (points.length) {
    svg.append(svgEl("polyline", { fill: "none", stroke: "#2f6fed", "stroke-width": 1.5,
      points: points.map((p) => `${X(p.ts).toFixed(1)},${Y(p[key] || 0).toFixed(1)}`).join(" ") }));
    for (const p of points) {
      const dot = svgEl("circle", { cx: X(p.ts).toFixed(1), cy: Y(p[key] || 0).toFixed(1), r: 2.5, fill: "#2f6fed" });
      const tip = svgEl("title"); tip.textContent = `${new Date(p.ts / 1000).toLocaleTimeString()}: ${fmt(p[key] || 0)}`;
      dot.append(tip); svg.append(dot);
    }
  }
  return el("div", { class: "panel chart" }, el("h3", {}, title), svg);
}
// RED covers every span (before sampling), so its services come from the RED data itself:
// a service whose traces were all sampled out still has rates and latencies.
async function loadRedServices() {
  const end = Date.now() * 1000, start = end - 7 * 86400 * 1e6;
  const rows = await api(`/api/red/summary?start=${start}&end=${end}`);
  const names = [...new Set(rows.map((r) => r.service))].sort();
  $("#red-service").replaceChildren(...names.map((s) => el("option", { value: s }, s)));
}
let redSeq = 0;  // a newer request supersedes a slower older one
async function showRed(ev) {
  if (ev) ev.preventDefault();
  const seq = ++redSeq;
  const service = $("#red-service").value;
  if (!service) return;
  const end = Date.now() * 1000, start = end - Number($("#red-range").value) * 1e6;
  setStatus("loading RED…");
  try {
    const q = `service=${encodeURIComponent(service)}&start=${start}&end=${end}`;
    const [data, summary] = await Promise.all([api("/api/red?" + q), api("/api/red/summary?" + q)]);
    if (seq !== redSeq) return;
    setStatus("");
    const box = $("#red-charts");
    if (!data.series.length) { box.replaceChildren(el("div", { class: "empty" }, "No RED data in this range.")); return; }
    const ms = (v) => (v === null ? "–" : v.toFixed(1));
    const table = el("table", { class: "kv panel", id: "red-summary", "data-service": service },
      el("tr", {}, ...["operation", "calls", "req/s", "errors", "p50 ms", "p90 ms", "p99 ms"].map((h) => el("td", {}, h))),
      ...summary.map((r) => el("tr", { class: "red-row" }, el("td", {}, r.operation), el("td", {}, r.calls),
        el("td", {}, r.rate.toFixed(2)), el("td", {}, (r.errorRatio * 100).toFixed(1) + "%"),
        el("td", {}, ms(r.p50)), el("td", {}, ms(r.p90)), el("td", {}, ms(r.p99)))));
    box.replaceChildren(table, ...data.series.map((s) => el("div", {},
      el("h2", {}, s.operation || "all operations"),
      el("div", { class: "charts" },
        lineChart("Requests/s", s.points, "rate", (v) => v.toFixed(2)),
        lineChart("Error ratio", s.points, "errorRatio", (v) => (v * 100).toFixed(1) + "%"),
        lineChart("p99 latency (ms)", s.points, "p99", (v) => v.toFixed(1)),
        lineChart("p50 latency (ms)", s.points, "p50", (v) => v.toFixed(1))))));
  } catch (e) { setStatus(e.message); }
}

// ---------------------------------------------------------------- service map
// A layered drawing (callers left of callees), readable at dozens of services where a circle
// is not. Cycles are broken by the Eades-Lin-Smyth heuristic (services ordered so that as few
// calls, weighted by call count, as possible point backwards; those are drawn dashed), each
// service sits in the layer of its longest forward call path from an entry service, and
// services in a layer are ordered by the mean position of their neighbours (barycenter
// sweeps) to reduce crossings.
function feedbackOrder(names, edges) {
  const rest = new Set(names);
  const weight = (list) => list.filter((d) => rest.has(d.parent) && rest.has(d.child)).reduce((a, d) => a + d.callCount, 0);
  const outOf = new Map(names.map((n) => [n, edges.filter((d) => d.parent === n)]));
  const into = new Map(names.map((n) => [n, edges.filter((d) => d.child === n)]));
  const left = [], right = [];
  while (rest.size) {
    let changed = true;
    while (changed) {
      changed = false;
      for (const n of [...rest].sort()) {
        if (!weight(outOf.get(n))) { right.unshift(n); rest.delete(n); changed = true; }
        else if (!weight(into.get(n))) { left.push(n); rest.delete(n); changed = true; }
      }
    }
    if (!rest.size) break;
    const best = [...rest].sort().reduce((x, y) =>
      (weight(outOf.get(y)) - weight(into.get(y)) > weight(outOf.get(x)) - weight(into.get(x)) ? y : x));
    left.push(best); rest.delete(best);
  }
  return [...left, ...right];
}

function layeredLayout(names, deps) {
  const edges = deps.filter((d) => d.parent !== d.child);
  const rank = new Map(feedbackOrder(names, edges).map((n, i) => [n, i]));
  const back = new Set(edges.filter((d) => rank.get(d.parent) > rank.get(d.child)).map((d) => d.parent + "\u0000" + d.child));
  const dag = edges.map((d) => (back.has(d.parent + "\u0000" + d.child) ? [d.child, d.parent] : [d.parent, d.child]));
  const preds = new Map(names.map((n) => [n, []])), succs = new Map(names.map((n) => [n, []]));
  for (const [p, c] of dag) { preds.get(c).push(p); succs.get(p).push(c); }
  // Longest path from the sources, in the feedback order (a topological order of the dag).
  const layer = new Map(names.map((n) => [n, 0]));
  for (const n of [...names].sort((x, y) => rank.get(x) - rank.get(y))) {
    for (const c of succs.get(n)) layer.set(c, Math.max(layer.get(c), layer.get(n) + 1));
  }
  const layers = [];
  for (const n of names) { const l = layer.get(n); (layers[l] = layers[l] || []).push(n); }
  const order = new Map();
  const renumber = () => layers.forEach((ns) => ns.forEach((n, i) => order.set(n, i)));
  renumber();
  const mean = (ns, own) => (ns.length ? ns.reduce((a, n) => a + order.get(n), 0) / ns.length : own);
  for (let sweep = 0; sweep < 8; sweep++) {
    const down = sweep % 2 === 0;
    const seq = down ? layers.slice(1) : layers.slice(0, -1).reverse();
    for (const ns of seq) {
      const key = new Map(ns.map((n) => [n, mean(down ? preds.get(n) : succs.get(n), order.get(n))]));
      ns.sort((x, y) => key.get(x) - key.get(y) || order.get(x) - order.get(y));
      ns.forEach((n, i) => order.set(n, i));
    }
  }
  return { layers, layer, order, back };
}

async function showMap() {
  setStatus("loading dependencies…");
  let deps;
  try { deps = await api(`/api/dependencies?endTs=${Date.now()}&lookback=${7 * 86400000}`); }
  catch (e) { setStatus(e.message); return; }
  setStatus("");
  const names = [...new Set(deps.flatMap((d) => [d.parent, d.child]))].sort();
  const box = $("#service-map");
  if (!names.length) { box.replaceChildren(el("div", { class: "empty" }, "No cross-service calls stored yet.")); return; }
  const { layers, layer, order, back } = layeredLayout(names, deps);
  const COL = 210, ROW = 64, PAD = 110, R = 11, tallest = Math.max(...layers.map((l) => l.length));
  // Room above for calls that skip layers (they bow up to 1.25 rows) and below for back calls.
  const W = PAD * 2 + (layers.length - 1) * COL, H = PAD * 2 + tallest * ROW;
  const pos = new Map(names.map((n) => {
    const size = layers[layer.get(n)].length;
    return [n, [PAD + layer.get(n) * COL, PAD + (tallest - size) * ROW / 2 + order.get(n) * ROW]];
  }));
  const svg = svgEl("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, id: "map-svg" });
  const defs = svgEl("defs");
  const marker = svgEl("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 9, markerHeight: 9, markerUnits: "userSpaceOnUse", orient: "auto" });
  marker.append(svgEl("path", { d: "M0,0 L10,5 L0,10 z", fill: "#8a93a6" })); defs.append(marker); svg.append(defs);
  const maxCalls = Math.max(...deps.map((d) => d.callCount));
  for (const d of deps) {
    if (d.parent === d.child) continue;
    const [x1, y1] = pos.get(d.parent), [x2, y2] = pos.get(d.child);
    const isBack = back.has(d.parent + "\u0000" + d.child);
    const sx = x1 + (x2 >= x1 ? R : -R), tx = x2 + (x2 >= x1 ? -R - 2 : R + 2);
    const bend = (tx - sx) / 2;
    // A call against the flow bows below both services, deeper the farther it goes back.
    const drop = ROW * (0.6 + Math.min(2, Math.abs(x2 - x1) / COL) * 0.35);
    // A forward call that skips layers bows above the services it passes (not through them).
    const span = Math.abs(layer.get(d.child) - layer.get(d.parent));
    const rise = ROW * (0.5 + Math.min(3, span - 1) * 0.25);
    const path = isBack
      ? `M${x1},${y1 + R} C${x1},${y1 + drop} ${x2},${y2 + drop} ${x2},${y2 + R + 2}`
      : span > 1
        ? `M${x1 + R},${y1} C${x1 + COL / 2},${Math.min(y1, y2) - rise} ${x2 - COL / 2},${Math.min(y1, y2) - rise} ${tx},${y2}`
        : `M${sx},${y1} C${sx + bend},${y1} ${tx - bend},${y2} ${tx},${y2}`;
    const edge = svgEl("path", { d: path, fill: "none", stroke: "#8a93a6", "stroke-width": (1 + 3 * d.callCount / maxCalls).toFixed(2),
      "marker-end": "url(#arrow)", class: "edge" + (isBack ? " back" : ""), "data-parent": d.parent, "data-child": d.child });
    if (isBack) { edge.setAttribute("stroke-dasharray", "5 4"); edge.setAttribute("stroke-opacity", "0.6"); }
    const tip = svgEl("title"); tip.textContent = `${d.parent} → ${d.child}: ${d.callCount} calls`; edge.append(tip);
    svg.append(edge);
  }
  for (const n of names) {
    const [x, y] = pos.get(n);
    const g = svgEl("g", { class: "node", "data-service": n, "data-layer": layer.get(n), transform: `translate(${x},${y})` });
    g.append(svgEl("circle", { r: R, fill: serviceColor(n) }));
    const label = svgEl("text", { y: -R - 5, "text-anchor": "middle", class: "node-label" });  // above: back edges bow below
    label.textContent = n.length > 28 ? n.slice(0, 27) + "…" : n;
    const tip = svgEl("title"); tip.textContent = n; g.append(tip, label);
    svg.append(g);
  }
  box.replaceChildren(el("div", { class: "meta" }, `${names.length} services · ${deps.length} call edges · callers left of callees (dashed: calls back against the flow)`), svg);
}

// ---------------------------------------------------------------- routing
async function route() {
  const [, view, arg, ...rest] = (location.hash || "#/search").split("/");
  document.querySelectorAll(".view").forEach((v) => { v.hidden = true; });
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", a.dataset.view === view));
  if (view === "trace" && arg) { $("#view-trace").hidden = false; await showTrace(arg); }
  else if (view === "red") { $("#view-red").hidden = false; if (!$("#red-service").options.length) await loadRedServices(); await showRed(); }
  else if (view === "map") { $("#view-map").hidden = false; await showMap(); }
  else if (view === "sampling") { $("#view-sampling").hidden = false; await showSampling(); }
  else if (view === "compare" && arg) { $("#view-compare").hidden = false; await showCompare(arg, rest[0] || ""); }
  else { $("#view-search").hidden = false; }
}

window.addEventListener("hashchange", route);
document.addEventListener("DOMContentLoaded", async () => {
  $("#token").value = localStorage.getItem("tracehouse.token") || "";
  $("#token-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const token = $("#token").value.trim();
    if (token) localStorage.setItem("tracehouse.token", token); else localStorage.removeItem("tracehouse.token");
    try { await loadServices($("#service")); await loadOperations(); setStatus(""); } catch (e) { setStatus(e.message); }
  });
  $("#search-form").addEventListener("submit", search);
  $("#red-form").addEventListener("submit", showRed);
  $("#service").addEventListener("change", loadOperations);
  try { await loadServices($("#service")); await loadOperations(); } catch (e) { setStatus(e.message); }
  document.body.dataset.ready = "1";
  await route();
});
