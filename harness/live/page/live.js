// The live view: every panel of the catalogue, both lanes side by side, from /api/* (the live
// server queries Prometheus with the catalogue's own queries). Each chart's element carries
// data-points (the values it draws), which the page test reads.
"use strict";

const REFRESH_MS = 2500;
const PALETTE = ["#2f6fdf", "#e0672d", "#1a9e6a", "#9b51e0", "#c9302c", "#6b7485", "#d4a017", "#17a2b8"];
const token = document.body.dataset.token;
const lanes = document.body.dataset.lanes.split(",");
const charts = [];  // {el, panel, lane, plot, labels}
let windows = {};   // lane -> [[start, end], ...] when a fault was in force
let config = null;

document.documentElement.style.setProperty("--lanes", String(lanes.length));

function api(path, body) {
  const init = body === undefined ? {} : {
    method: "POST",
    headers: {"Content-Type": "application/json", "X-Doorbuster-Token": token},
    body: JSON.stringify(body),
  };
  return fetch(path, init).then(async (r) => {
    const data = await r.json().catch(() => ({error: `HTTP ${r.status}`}));
    if (!r.ok) throw new Error(data.error || `HTTP ${r.status}`);
    return data;
  });
}

function formatter(unit) {
  return (u, values) => values.map((v) => {
    if (v == null) return "";
    if (unit === "s") return v < 1 ? `${+(v * 1000).toPrecision(3)} ms` : `${+v.toPrecision(3)} s`;
    if (unit === "reqps") return `${+v.toPrecision(3)}/s`;
    if (unit === "percentunit") return `${+(v * 100).toPrecision(3)}%`;
    return `${+v.toPrecision(3)}`;
  });
}

function windowsFor(lane) {
  if (lane) return (windows[lane] || []).concat(windows["*"] || []);
  return Object.values(windows).flat();
}

function shade(chart) {
  return (u) => {
    const ctx = u.ctx;
    const {left, top, width, height} = u.bbox;
    ctx.save();
    ctx.fillStyle = "rgba(207, 34, 46, 0.12)";
    for (const [start, end] of windowsFor(chart.lane)) {
      const x0 = Math.max(left, u.valToPos(start, "x", true));
      const x1 = Math.min(left + width, u.valToPos(end, "x", true));
      if (x1 > x0) ctx.fillRect(x0, top, x1 - x0, height);
    }
    ctx.restore();
  };
}

function addChart(cells, layout, lane, wide) {
  const el = document.createElement("div");
  el.className = "chart empty" + (wide ? " wide" : "");
  el.dataset.panel = layout.key;
  el.dataset.lane = lane || "";
  el.dataset.points = "0";
  cells.appendChild(el);
  charts.push({el, panel: layout, lane, plot: null, labels: ""});
}

function buildRows() {
  const root = document.getElementById("panels");
  for (const layout of config.panels) {
    const row = document.createElement("div");
    row.className = "panel-row";
    row.dataset.panel = layout.key;
    row.innerHTML = "<h3></h3><div class='cells'></div>";
    row.querySelector("h3").textContent = layout.title;
    const cells = row.querySelector(".cells");
    if (layout.split) {
      for (const lane of lanes) addChart(cells, layout, lane, false);
    } else if (layout.lane && lanes.includes(layout.lane)) {
      for (const lane of lanes) {
        if (lane === layout.lane) addChart(cells, layout, lane, false);
        else {
          const note = document.createElement("div");
          note.className = "cell-note";
          note.textContent = `${layout.lane} lane only`;
          cells.appendChild(note);
        }
      }
    } else {
      addChart(cells, layout, null, true);
    }
    root.appendChild(row);
  }
}

function draw(chart, data) {
  const picked = data.series.filter((s) => !chart.lane || s.lane === chart.lane || s.lane === null);
  const points = picked.reduce((n, s) => n + s.points, 0);
  chart.el.dataset.points = String(points);
  chart.el.classList.toggle("empty", points === 0);
  const labels = picked.map((s) => s.label).join("|");
  const rows = [data.times, ...picked.map((s) => s.values)];
  const width = Math.max(200, chart.el.clientWidth - 8);
  if (chart.plot && chart.labels === labels) {
    chart.plot.setData(rows);
    return;
  }
  if (chart.plot) chart.plot.destroy();
  chart.labels = labels;
  if (picked.length === 0) { chart.plot = null; return; }
  chart.plot = new uPlot({
    width, height: 170,
    legend: {live: false},
    cursor: {drag: {x: false, y: false}},
    scales: {x: {time: true}},
    axes: [{}, {values: formatter(chart.panel.unit), size: 60}],
    series: [{}, ...picked.map((s, i) => ({label: s.label, stroke: PALETTE[i % PALETTE.length], width: 1.5, spanGaps: false}))],
    hooks: {drawClear: [shade(chart)]},
  }, rows, chart.el);
}

function describeFault(f) {
  const attrs = Object.entries(f.attributes || {}).map(([k, v]) => `${k}=${v}`).join(" ");
  return `${f.lane}-${f.dependency}: ${f.type}${attrs ? " " + attrs : ""}`;
}

function showFaults(faults) {
  const list = document.getElementById("fault-list");
  list.replaceChildren();
  if (faults.length === 0) {
    list.innerHTML = "<li class='muted'>none</li>";
    return;
  }
  for (const f of faults) {
    const li = document.createElement("li");
    li.className = "fault" + (f.foreign ? " foreign" : "");
    li.dataset.lane = f.lane;
    li.dataset.dependency = f.dependency;
    li.dataset.name = f.name;
    li.textContent = describeFault(f) + (f.foreign ? " (applied outside doorbuster)" : ` (applied by ${f.owner})`);
    const remove = document.createElement("button");
    remove.textContent = "remove";
    remove.onclick = () => api("api/faults/remove", {dependency: f.dependency, lane: f.lane, name: f.name})
      .then(() => message(`removed ${describeFault(f)}`, false), (e) => message(e.message, true))
      .then(refresh);
    li.appendChild(remove);
    list.appendChild(li);
  }
}

function showRun(run) {
  const stage = document.getElementById("run-stage");
  const table = document.getElementById("verdicts");
  if (!run) return;
  stage.dataset.stage = run.stage;
  const parts = [`<strong></strong> scenario <b></b>`];
  stage.innerHTML = parts.join("");
  stage.querySelector("strong").textContent = run.stage;
  stage.querySelector("b").textContent = run.scenario;
  if (run.stage === "load" && run.duration_s) {
    stage.append(` · ${run.load_stage || "ending"} · ${Math.round(run.elapsed_s)}s of ${Math.round(run.duration_s)}s`);
  }
  if (run.faults.length) stage.append(` · faults: ${run.faults.join(", ")}`);
  if (run.outcome) stage.append(` · outcome ${run.outcome}`);
  const body = table.querySelector("tbody");
  body.replaceChildren();
  for (const v of run.verdicts) {
    const tr = document.createElement("tr");
    tr.className = "verdict";
    tr.dataset.outcome = v.outcome;
    for (const [text, cls] of [[v.outcome.toUpperCase(), v.outcome], [v.expectation, ""], [v.observed + (v.reason ? ` (${v.reason})` : ""), ""]]) {
      const td = document.createElement("td");
      td.textContent = text;
      if (cls) td.className = cls;
      tr.appendChild(td);
    }
    body.appendChild(tr);
  }
  table.hidden = run.verdicts.length === 0;
}

function message(text, error) {
  const el = document.getElementById("fault-message");
  el.textContent = text;
  el.classList.toggle("error", error);
}

let refreshing = false;
async function refresh() {
  if (refreshing) return;
  refreshing = true;
  const range = document.getElementById("range").value;
  try {
    const [fw, state] = await Promise.all([api(`api/fault-windows?range=${range}`), api("api/state")]);
    windows = fw.windows;
    showFaults(state.faults);
    showRun(state.run);
    const keys = [...new Set(charts.map((c) => c.panel.key))];
    const series = await Promise.all(keys.map((k) => api(`api/series?panel=${encodeURIComponent(k)}&range=${range}`)));
    const byKey = Object.fromEntries(series.map((s) => [s.panel, s]));
    for (const chart of charts) draw(chart, byKey[chart.panel.key]);
    document.getElementById("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
    document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
  } catch (e) {
    document.getElementById("updated").textContent = `not updated: ${e.message}`;
  } finally {
    refreshing = false;
  }
}

function fillForm() {
  const form = document.getElementById("fault-form");
  const deps = [...new Set(Object.values(config.dependencies).flat())];
  form.dependency.replaceChildren(...deps.map((d) => new Option(d, d)));
  form.type.replaceChildren(...Object.keys(config.fault_types).map((t) => new Option(t, t)));
  form.onsubmit = (event) => {
    event.preventDefault();
    const attributes = {};
    for (const pair of form.attributes.value.split(/[\s,]+/).filter(Boolean)) {
      const [key, raw] = pair.split("=");
      const value = Number(raw);
      attributes[key] = raw !== undefined && raw !== "" && Number.isFinite(value) ? value : raw;
    }
    api("api/faults", {dependency: form.dependency.value, type: form.type.value, lane: form.lane.value, attributes})
      .then((r) => message(`added ${r.added.map(describeFault).join("; ")}`, false), (e) => message(e.message, true))
      .then(refresh);
  };
}

api("api/config").then((c) => {
  config = c;
  buildRows();
  fillForm();
  document.getElementById("range").onchange = refresh;
  refresh();
  setInterval(refresh, REFRESH_MS);
}, (e) => { document.getElementById("updated").textContent = `could not load: ${e.message}`; });

window.addEventListener("resize", () => {
  for (const chart of charts) {
    if (chart.plot) chart.plot.setSize({width: Math.max(200, chart.el.clientWidth - 8), height: 170});
  }
});

window.doorbusterLive = {refresh};
