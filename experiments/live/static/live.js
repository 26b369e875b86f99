// planlab live view: plain JavaScript and SVG, no dependencies.
// The server sends a run's static part once (/api/plan) and its state on every change
// (/api/events, server-sent events, about once a second while the run goes on).
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const STATE_NAMES = { w: "waiting", y: "ready", r: "running", d: "done", f: "failed" };
const STATE_ORDER = ["waiting", "ready", "running", "done", "failed"];
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                 "#bcbd22", "#17becf"];
const view = { runId: null, plan: null, pending: null, loading: false, source: null, chosen: "", nodes: [],
               profileColour: {}, lastStates: "" };

function $(id) { return document.getElementById(id); }
function el(name, attrs, parent) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}
function seconds(v, digits) {
  return v === null || v === undefined ? "–" : `${Number(v).toFixed(digits === undefined ? 1 : digits)} s`;
}
function bytes(v) {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
  return `${v.toFixed(i ? 1 : 0)} ${units[i]}`;
}

// ------------------------------------------------------------------ connection
function connect() {
  if (view.source) view.source.close();
  const query = view.chosen ? `?run=${encodeURIComponent(view.chosen)}` : "";
  const source = new EventSource(`/api/events${query}`);
  view.source = source;
  source.onopen = () => { $("connection").textContent = "live"; };
  source.onmessage = (event) => receive(JSON.parse(event.data));
  source.onerror = () => { $("connection").textContent = "disconnected"; };
}

function receive(state) {
  view.pending = state;
  if (!view.loading) drain();
}

async function drain() {
  view.loading = true;
  try {
    while (view.pending) {
      const state = view.pending;
      view.pending = null;
      if (state.run_id !== view.runId) {
        const response = await fetch(`/api/plan?run=${encodeURIComponent(state.run_id)}`);
        if (!response.ok) continue;
        view.plan = await response.json();
        view.runId = state.run_id;
        drawPlan(view.plan);
        refreshRuns();
      }
      drawState(state);
    }
  } finally {
    view.loading = false;
  }
}

async function refreshRuns() {
  const response = await fetch("/api/runs");
  if (!response.ok) return;
  const data = await response.json();
  const select = $("run-select");
  const keep = view.chosen;
  select.innerHTML = "";
  select.appendChild(new Option(`newest${data.newest ? "" : " (none yet)"}`, ""));
  for (const run of data.runs) select.appendChild(new Option(`${run.label} (${run.status})`, run.run_id));
  select.value = keep;
}

// ------------------------------------------------------------------ the static part: DAG and planned Gantt
function drawPlan(plan) {
  document.title = `planlab live: ${plan.label}`;
  $("run-label").textContent = `${plan.label} · ${plan.workflow} · ${plan.planner} @ ${plan.sla}`;
  $("total").textContent = plan.ids.length;
  $("simulated-label").textContent = `simulated at the SLA (${plan.sla})`;
  const profiles = [...new Set(plan.planned_profile.concat(plan.workers.map((w) => w[1])))].sort();
  view.profileColour = Object.fromEntries(profiles.map((p, i) => [p, PALETTE[i % PALETTE.length]]));
  view.lastStates = "";
  drawDag(plan);
  drawLegends(profiles);
}

function drawLegends(profiles) {
  $("state-legend").innerHTML = STATE_ORDER.map(
    (s) => `<span><span class="swatch" style="background:var(--${s})"></span>${s}</span>`).join("");
  $("gantt-legend").innerHTML = profiles.map(
    (p) => `<span><span class="swatch square" style="background:${view.profileColour[p]}"></span>${p}</span>`)
    .join("") + `<span>│ lines: <b style="color:#1d2330">now</b> · planned · simulated · projected</span>`;
}

function drawDag(plan) {
  const svg = $("dag");
  svg.innerHTML = "";
  const layout = plan.layout;
  const cols = Math.max(layout.columns, 1), rows = Math.max(layout.rows, 1);
  const width = Math.max(svg.clientWidth || 1200, 400);
  const dx = width / (cols + 1);
  const height = Math.min(Math.max(rows * 16 + 30, 160), 640);
  const dy = (height - 30) / rows;
  const r = Math.max(1.5, Math.min(7, dx * 0.3, dy * 0.4));
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.style.height = `${height}px`;
  const x = (i) => dx * (layout.column[i] + 1);
  const y = (i) => 15 + dy * (layout.row[i] + 0.5);
  const path = layout.edges.map(([p, c]) => `M${x(p).toFixed(1)} ${y(p).toFixed(1)}L${x(c).toFixed(1)} ${y(c).toFixed(1)}`);
  el("path", { d: path.join(""), stroke: "#98a2b3", "stroke-opacity": plan.ids.length > 300 ? 0.25 : 0.6,
               "stroke-width": 1, fill: "none" }, svg);
  view.nodes = plan.ids.map((id, i) => {
    const node = el("circle", { cx: x(i).toFixed(1), cy: y(i).toFixed(1), r: r.toFixed(1), class: "node waiting",
                                fill: "var(--waiting)", stroke: view.profileColour[plan.planned_profile[i]],
                                "data-task": id, "data-state": "waiting" }, svg);
    node.appendChild(el("title")).textContent = taskTitle(plan, i, "waiting");
    return node;
  });
}

function taskTitle(plan, i, state) {
  const p = plan.planned_phases[i];
  return `${plan.ids[i]} (${plan.kinds[i]}): ${state}\nplanned on worker ${plan.planned_worker[i]}, ` +
    `profile ${plan.planned_profile[i]}\nplanned execution ${seconds(p[2], 2)} → ${seconds(p[3], 2)}`;
}

// ------------------------------------------------------------------ the changing part
function drawState(state) {
  const plan = view.plan;
  const progress = state.progress;
  const status = $("status");
  if (status.textContent !== state.status && status.textContent !== "connecting") refreshRuns();   // its status
  status.textContent = state.status;
  status.className = `pill ${state.status}`;
  $("done").textContent = progress.done;
  $("done-bar").style.width = `${(100 * progress.done) / Math.max(progress.total, 1)}%`;
  $("plan-tick").style.left = `${(100 * progress.planned_done_by_now) / Math.max(progress.total, 1)}%`;
  $("counts").innerHTML = STATE_ORDER.map(
    (s) => `<span><span class="swatch" style="background:var(--${s})"></span>${s} ${state.counts[s]}</span>`).join("");
  $("elapsed").textContent = seconds(progress.elapsed_s);
  $("planned").textContent = seconds(progress.planned_makespan_s, 2);
  $("simulated").textContent = seconds(progress.simulated_makespan_s, 2);
  $("projected").textContent = seconds(progress.projected_finish_s);
  const makespan = $("makespan");
  makespan.textContent = progress.makespan_s === null ? "–" : seconds(progress.makespan_s, 3);
  makespan.dataset.value = progress.makespan_s === null ? "" : String(progress.makespan_s);
  const starts = state.starts;
  $("starts").textContent = `${starts.workers_started} · ${starts.cold} · ${starts.warm}`;
  $("bytes").textContent = `${bytes(state.bytes.downloaded)} · ${bytes(state.bytes.uploaded)}`;
  drawFailures(state.failures);
  if (state.states !== view.lastStates) colourNodes(plan, state.states);
  drawGantt(plan, state);
  window.liveState = state;   // for scripts and tests: exactly what the page drew
}

function colourNodes(plan, codes) {
  for (let i = 0; i < view.nodes.length; i++) {
    if (codes[i] === view.lastStates[i]) continue;
    const name = STATE_NAMES[codes[i]];
    const node = view.nodes[i];
    node.setAttribute("fill", `var(--${name})`);
    node.setAttribute("class", `node ${name}`);
    node.setAttribute("data-state", name);
    node.firstChild.textContent = taskTitle(plan, i, name);
  }
  view.lastStates = codes;
}

function drawFailures(failures) {
  $("failures-section").classList.toggle("hidden", failures.length === 0);
  const list = $("failures");
  list.innerHTML = "";
  for (const f of failures) {
    const item = document.createElement("li");
    item.textContent = `${f.final ? "run failed" : "failed attempt"}${f.task ? ` of task ${f.task}` : ""}:`;
    const text = document.createElement("pre");
    text.textContent = f.message;
    item.appendChild(text);
    list.appendChild(item);
  }
}

// ------------------------------------------------------------------ Gantt: planned above, real below, per worker
function ganttRows(plan, bars) {
  const rows = plan.workers.map((w) => w[0]);
  const known = new Set(rows);
  for (const b of bars) if (!known.has(b[1])) { known.add(b[1]); rows.push(b[1]); }
  return rows;
}

function drawGantt(plan, state) {
  const svg = $("gantt");
  svg.innerHTML = "";
  const p = state.progress;
  const rows = ganttRows(plan, state.bars);
  const rowH = Math.max(4, Math.min(26, 640 / Math.max(rows.length, 1)));
  const left = rowH >= 10 ? 110 : 20, top = 18, width = Math.max(svg.clientWidth || 1200, 400);
  const height = top + rows.length * rowH + 24;
  // the projected finish can be far off early in a run: it stretches the axis by at most half again
  let span = Math.max(p.planned_makespan_s || 0, p.simulated_makespan_s || 0, p.elapsed_s || 0, p.makespan_s || 0);
  span = Math.max(span, Math.min(p.projected_finish_s || 0, 1.5 * span));
  for (const b of state.bars) span = Math.max(span, b[7] || 0);
  span = Math.max(span * 1.04, 1e-3);
  const sx = (t) => left + ((width - left - 12) * t) / span;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.style.height = `${height}px`;
  drawAxis(svg, sx, span, top, height - 20);
  const rowOf = Object.fromEntries(rows.map((w, i) => [w, i]));
  rows.forEach((w, i) => {
    if (i % 2) el("rect", { x: left, y: top + i * rowH, width: width - left - 12, height: rowH, fill: "#f8f9fb" }, svg);
    if (rowH >= 10) el("text", { x: left - 6, y: top + i * rowH + rowH * 0.7, "text-anchor": "end",
                                 class: "rowlabel" }, svg).textContent = shortName(w);
  });
  const planned = el("g", { class: "planned" }, svg);
  plan.planned_phases.forEach((ph, i) => {
    const row = rowOf[plan.planned_worker[i]];
    if (row === undefined || ph[2] === null) return;
    const colour = view.profileColour[plan.planned_profile[i]];
    const bar = el("rect", { x: sx(ph[0]), y: top + row * rowH + rowH * 0.08, width: Math.max(sx(ph[5]) - sx(ph[0]), 1),
                             height: rowH * 0.36, fill: colour, "fill-opacity": 0.3, stroke: colour,
                             "stroke-width": 0.6, class: "planned", "data-task": plan.ids[i] }, planned);
    el("title", {}, bar).textContent = `${plan.ids[i]} planned ${seconds(ph[2], 2)} → ${seconds(ph[3], 2)}`;
  });
  const real = el("g", { class: "real" }, svg);
  for (const b of state.bars) drawRealBar(real, plan, b, rowOf[b[1]], sx, top, rowH);
  drawMarkers(svg, p, sx, span, top, height - 20);
}

function drawRealBar(group, plan, b, row, sx, top, rowH) {
  const [i, worker, ds, de, es, ee, us, ue, exact] = b;
  const colour = view.profileColour[plan.planned_profile[i]] || "#555";
  const y = top + row * rowH + rowH * 0.5, h = rowH * 0.42;
  const bar = el("g", { class: `real-bar${exact ? "" : " approximate"}`, "data-task": plan.ids[i],
                        "data-worker": worker, "data-start": ds, "data-end": ue,
                        "data-exec-start": es, "data-exec-end": ee, "data-exact": exact ? "1" : "0" }, group);
  if (exact) {
    for (const [a, z, alpha] of [[ds, de, 0.35], [es, ee, 1], [us, ue, 0.35]])
      el("rect", { x: sx(a), y, width: Math.max(sx(z) - sx(a), 0.8), height: h, fill: colour, "fill-opacity": alpha }, bar);
  } else {
    el("rect", { x: sx(ds), y, width: Math.max(sx(ue) - sx(ds), 1.5), height: h, fill: colour, "fill-opacity": 0.45,
                 stroke: "var(--running)", "stroke-dasharray": "3 2", "stroke-width": 1 }, bar);
  }
  el("title", {}, bar).textContent = `${plan.ids[i]} on ${worker}: ${seconds(ds, 2)} → ${seconds(ue, 2)}` +
    (exact ? ` (execution ${seconds(es, 3)} → ${seconds(ee, 3)})` : " (seen by polling)");
}

function drawAxis(svg, sx, span, top, bottom) {
  const axis = el("g", { class: "axis" }, svg);
  const step = niceStep(span / 8);
  for (let t = 0; t <= span; t += step) {
    el("line", { x1: sx(t), x2: sx(t), y1: top, y2: bottom }, axis);
    el("text", { x: sx(t), y: bottom + 13, "text-anchor": "middle" }, axis).textContent = `${+t.toFixed(3)} s`;
  }
}

function niceStep(raw) {
  const power = Math.pow(10, Math.floor(Math.log10(Math.max(raw, 1e-6))));
  for (const m of [1, 2, 5, 10]) if (raw <= m * power) return m * power;
  return 10 * power;
}

function drawMarkers(svg, p, sx, span, top, bottom) {
  const marks = [["planned", p.planned_makespan_s, "#667085", "6 3"], ["simulated", p.simulated_makespan_s, "#9467bd", "2 2"]];
  if (p.makespan_s === null) {
    marks.push(["projected", p.projected_finish_s, "#f08c00", "4 3"], ["now", p.elapsed_s, "#1d2330", ""]);
  } else {
    marks.push(["makespan", p.makespan_s, "#1d2330", ""]);
  }
  marks.forEach(([name, t, colour, dash], k) => {
    if (t === null || t === undefined) return;
    const beyond = t > span;          // drawn at the right edge, with its value
    const x = sx(Math.min(t, span));
    el("line", { x1: x, x2: x, y1: top - 4, y2: bottom, stroke: colour, "stroke-dasharray": dash,
                 class: `marker-line marker-${name}` }, svg);
    el("text", { x: beyond ? x - 3 : x + 3, y: top - 6 + (k % 2) * 9, fill: colour, class: "marker-text",
                 "text-anchor": beyond ? "end" : "start" }, svg).textContent = beyond ? `${name} ${seconds(t)} →` : name;
  });
}

function shortName(name) {
  return name.length <= 16 ? name : `${name.slice(0, 7)}~${name.slice(-7)}`;
}

// ------------------------------------------------------------------ start
$("run-select").addEventListener("change", (event) => {
  view.chosen = event.target.value;
  view.runId = null;
  connect();
});
refreshRuns();
connect();
