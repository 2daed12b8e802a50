// weft server UI: a small single-page app over the Step Functions API (POST / with
// X-Amz-Target). No framework, no build step. Views are chosen by the location hash:
//   #/                      state machines
//   #/sm/<stateMachineArn>  a state machine: graph, executions, start form
//   #/exec/<executionArn>   an execution: status, graph, Gantt chart, history
"use strict";

const TOKEN_KEY = "weft.token";
const main = document.getElementById("main");
let refreshTimer = null;
let renderSeq = 0;

// ---- helpers -------------------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

const SVGNS = "http://www.w3.org/2000/svg";
function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null) el.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function fmtTime(t) {
  if (t === undefined || t === null) return "";
  const d = new Date(typeof t === "number" ? t * 1000 : t);
  return isNaN(d) ? String(t) : d.toLocaleString();
}
function toMs(t) {
  if (typeof t === "number") return t * 1000;
  const v = Date.parse(t);
  return isNaN(v) ? 0 : v;
}
function fmtDur(ms) {
  if (ms < 1000) return Math.round(ms) + " ms";
  if (ms < 60000) return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + " s";
  if (ms < 3600000) return Math.floor(ms / 60000) + " m " + Math.floor((ms % 60000) / 1000) + " s";
  return Math.floor(ms / 3600000) + " h " + Math.floor((ms % 3600000) / 60000) + " m";
}
function pretty(v) {
  if (typeof v === "string") {
    try { return JSON.stringify(JSON.parse(v), null, 2); } catch (_) { return v; }
  }
  return JSON.stringify(v, null, 2);
}
function badge(status) { return h("span", { class: "badge " + status }, status); }
function smLink(arn, text) { return h("a", { href: "#/sm/" + encodeURIComponent(arn) }, text || arn); }
function execLink(arn, text) { return h("a", { href: "#/exec/" + encodeURIComponent(arn) }, text || arn); }
function nameOfArn(arn) { return String(arn).split(":").pop(); }

// ---- API -----------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(type, message, status) { super(message); this.type = type; this.status = status; }
}

async function api(action, body) {
  const headers = {
    "X-Amz-Target": "AWSStepFunctions." + action,
    "Content-Type": "application/x-amz-json-1.0",
  };
  const token = localStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = "Bearer " + token;
  const resp = await fetch("/", { method: "POST", headers, body: JSON.stringify(body || {}) });
  const text = await resp.text();
  let data = {};
  try { data = text ? JSON.parse(text) : {}; } catch (_) { data = { message: text }; }
  if (!resp.ok) {
    throw new ApiError(data.__type || "HTTP " + resp.status, data.message || data.Message || text, resp.status);
  }
  return data;
}

function errorBox(e) {
  const auth = e && (e.status === 403 || /Token|Client|Signature/.test(e.type || ""));
  return h("div", { class: "error", role: "alert" },
    (e && e.type ? e.type + ": " : "") + (e && e.message ? e.message : String(e)),
    auth ? h("div", { class: "muted" }, "Enter an access token above (a line of $WEFT_HOME/tokens) and press Save.") : null);
}

// ---- login ---------------------------------------------------------------------------------

function setupLogin() {
  const form = document.getElementById("login");
  const input = document.getElementById("token");
  const status = document.getElementById("login-status");
  const show = () => { status.textContent = localStorage.getItem(TOKEN_KEY) ? "token saved" : "no token"; };
  show();
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const t = input.value.trim();
    if (t) localStorage.setItem(TOKEN_KEY, t);
    input.value = "";
    show();
    route();
  });
  document.getElementById("logout").addEventListener("click", () => {
    localStorage.removeItem(TOKEN_KEY);
    show();
    route();
  });
}

// ---- ASL graph -----------------------------------------------------------------------------

// The states reachable from StartAt with their BFS depth, and the edges between them.
function layoutGraph(def) {
  const states = (def && def.States) || {};
  const names = Object.keys(states);
  const edges = [];
  const succ = (name) => {
    const st = states[name] || {};
    const out = [];
    if (st.Next) out.push({ to: st.Next, kind: "next", label: "" });
    if (st.Type === "Choice") {
      (st.Choices || []).forEach((c, i) => { if (c.Next) out.push({ to: c.Next, kind: "choice", label: "rule " + (i + 1) }); });
      if (st.Default) out.push({ to: st.Default, kind: "choice", label: "default" });
    }
    (st.Catch || []).forEach((c) => {
      if (c.Next) out.push({ to: c.Next, kind: "catch", label: "catch " + ((c.ErrorEquals || []).join(",") || "") });
    });
    return out;
  };
  const depth = {};
  const order = [];
  if (def && def.StartAt && states[def.StartAt]) {
    depth[def.StartAt] = 0;
    const queue = [def.StartAt];
    while (queue.length) {
      const n = queue.shift();
      order.push(n);
      for (const e of succ(n)) {
        if (!(e.to in states)) continue;
        if (!(e.to in depth)) { depth[e.to] = depth[n] + 1; queue.push(e.to); }
      }
    }
  }
  let maxDepth = order.length ? Math.max(...order.map((n) => depth[n])) : -1;
  for (const n of names) {
    if (!(n in depth)) { depth[n] = ++maxDepth; order.push(n); }
  }
  for (const n of order) for (const e of succ(n)) if (e.to in states) edges.push({ from: n, ...e });
  return { states, order, depth, edges };
}

function typeLabel(st) {
  if (st.Type === "Parallel") {
    const n = (st.Branches || []).length;
    return "Parallel · " + n + " branch" + (n === 1 ? "" : "es");
  }
  if (st.Type === "Map") return "Map" + (st.MaxConcurrency ? " · max " + st.MaxConcurrency : "");
  if (st.Type === "Task" && st.Resource) return "Task · " + nameOfArn(st.Resource).slice(0, 22);
  return st.Type || "?";
}

// Renders the ASL `def` as an SVG flow graph; `status` maps state names to running /
// succeeded / failed.
function renderGraph(def, status) {
  const { states, order, depth, edges } = layoutGraph(def);
  const W = 180, H = 44, GX = 36, GY = 56, PAD = 20;
  const rows = {};
  for (const n of order) (rows[depth[n]] = rows[depth[n]] || []).push(n);
  const rowKeys = Object.keys(rows).map(Number).sort((a, b) => a - b);
  const maxRow = Math.max(1, ...rowKeys.map((k) => rows[k].length));
  const width = PAD * 2 + maxRow * W + (maxRow - 1) * GX + 120;
  const height = PAD * 2 + 24 + rowKeys.length * (H + GY);
  const pos = {};
  rowKeys.forEach((k, ri) => {
    const row = rows[k];
    const rowW = row.length * W + (row.length - 1) * GX;
    const x0 = (width - 120 - rowW) / 2;
    row.forEach((n, i) => { pos[n] = { x: x0 + i * (W + GX), y: PAD + 24 + ri * (H + GY) }; });
  });
  const svg = s("svg", { class: "graph", width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": "State machine graph with " + order.length + " states" });
  svg.append(s("defs", {},
    s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
      s("path", { d: "M0,0 L10,5 L0,10 z", fill: "#8a93a3" }))));
  if (def && def.StartAt && pos[def.StartAt]) {
    const p = pos[def.StartAt];
    svg.append(s("circle", { class: "start", cx: p.x + W / 2, cy: PAD + 4, r: 6 }));
    svg.append(s("path", { class: "edge", d: `M${p.x + W / 2},${PAD + 10} L${p.x + W / 2},${p.y}`, "marker-end": "url(#arrow)" }));
  }
  edges.forEach((e, i) => {
    const a = pos[e.from], b = pos[e.to];
    if (!a || !b) return;
    let d, lx, ly;
    if (depth[e.to] > depth[e.from]) {
      const x1 = a.x + W / 2, y1 = a.y + H, x2 = b.x + W / 2, y2 = b.y;
      const my = (y1 + y2) / 2;
      d = `M${x1},${y1} C${x1},${my} ${x2},${my} ${x2},${y2}`;
      lx = (x1 + x2) / 2 + 4; ly = my - 2;
    } else {
      // a loop back (or sideways): around the right of the boxes
      const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x + W, y2 = b.y + H / 2;
      const off = 30 + (i % 4) * 12;
      const xr = Math.max(x1, x2) + off;
      d = `M${x1},${y1} C${xr},${y1} ${xr},${y2} ${x2},${y2}`;
      lx = xr - 10; ly = (y1 + y2) / 2;
    }
    svg.append(s("path", { class: "edge " + e.kind, d, "marker-end": "url(#arrow)" }));
    if (e.label) svg.append(s("text", { class: "elabel", x: lx, y: ly }, e.label.slice(0, 28)));
  });
  for (const n of order) {
    const st = states[n] || {};
    const p = pos[n];
    const cls = "node " + (st.Type || "") + (status && status[n] ? " " + status[n] : "");
    const label = n.length > 26 ? n.slice(0, 25) + "…" : n;
    svg.append(s("g", { class: cls, transform: `translate(${p.x},${p.y})` },
      s("title", {}, n + " (" + (st.Type || "?") + ")" + (status && status[n] ? ": " + status[n] : "") +
        (st.End ? ", end" : "")),
      s("rect", { width: W, height: H, rx: st.Type === "Choice" ? 16 : 5 }),
      s("text", { x: 10, y: 18 }, label),
      s("text", { class: "type", x: 10, y: 34 }, typeLabel(st) + (st.End || st.Type === "Succeed" || st.Type === "Fail" ? " · end" : ""))));
  }
  return svg;
}

function legend() {
  return h("div", { class: "legend", "aria-hidden": "true" },
    h("span", { class: "running" }, "entered (running)"),
    h("span", { class: "succeeded" }, "exited"),
    h("span", { class: "failed" }, "failed"));
}

// ---- views ---------------------------------------------------------------------------------

async function viewList(seq) {
  const out = h("div", {}, h("h1", {}, "State machines"));
  const card = h("section", { class: "card", "aria-label": "State machines" }, h("p", { class: "muted" }, "Loading…"));
  out.append(card);
  show(out, seq);
  const all = [];
  let token;
  try {
    do {
      const r = await api("ListStateMachines", token ? { maxResults: 1000, nextToken: token } : { maxResults: 1000 });
      all.push(...(r.stateMachines || []));
      token = r.nextToken;
    } while (token && all.length < 10000);
  } catch (e) { card.replaceChildren(errorBox(e)); return; }
  if (!all.length) {
    card.replaceChildren(h("p", {}, "No state machines yet. Create one with ",
      h("code", {}, "aws stepfunctions create-state-machine --endpoint-url …"), "."));
    return;
  }
  card.replaceChildren(h("table", {},
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Name"), h("th", { scope: "col" }, "Type"), h("th", { scope: "col" }, "Created"))),
    h("tbody", {}, all.map((m) => h("tr", {},
      h("td", {}, smLink(m.stateMachineArn, m.name)), h("td", {}, m.type), h("td", {}, fmtTime(m.creationDate)))))));
}

async function viewStateMachine(arn, seq) {
  const out = h("div", {}, h("p", {}, h("a", { href: "#/" }, "← State machines")), h("h1", {}, nameOfArn(arn)));
  show(out, seq);
  let sm;
  try { sm = await api("DescribeStateMachine", { stateMachineArn: arn }); } catch (e) { out.append(errorBox(e)); return; }
  if (seq !== renderSeq) return;
  let def = null;
  try { def = JSON.parse(sm.definition); } catch (_) { /* shown raw below */ }
  out.append(h("section", { class: "card" },
    h("dl", { class: "kv" },
      h("dt", {}, "ARN"), h("dd", {}, sm.stateMachineArn),
      h("dt", {}, "Type"), h("dd", {}, sm.type),
      h("dt", {}, "Created"), h("dd", {}, fmtTime(sm.creationDate)),
      sm.description ? [h("dt", {}, "Description"), h("dd", {}, sm.description)] : null)));
  out.append(h("section", { class: "card", "aria-labelledby": "g-h" }, h("h2", { id: "g-h" }, "Graph"),
    def ? renderGraph(def, null) : h("p", { class: "error" }, "The definition is not JSON."),
    h("details", {}, h("summary", {}, "Definition (ASL)"), h("pre", {}, pretty(sm.definition)))));

  // start form
  const msg = h("div", { role: "alert" });
  const nameIn = h("input", { id: "exec-name", name: "name", placeholder: "generated if empty" });
  const inputIn = h("textarea", { id: "exec-input", name: "input", spellcheck: "false" });
  inputIn.value = "{}";
  const form = h("form", { class: "start-form" },
    h("div", { class: "field" }, h("label", { for: "exec-name" }, "Execution name (optional)"), nameIn),
    h("div", { class: "field" }, h("label", { for: "exec-input" }, "Input (JSON)"), inputIn),
    h("div", { class: "row" }, h("button", { type: "submit" }, "Start execution"), msg));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    msg.replaceChildren();
    msg.className = "";
    try { JSON.parse(inputIn.value); } catch (e) {
      msg.className = "error";
      msg.textContent = "Input is not valid JSON: " + e.message;
      inputIn.focus();
      return;
    }
    const body = { stateMachineArn: arn, input: inputIn.value };
    if (nameIn.value.trim()) body.name = nameIn.value.trim();
    try {
      const r = await api("StartExecution", body);
      location.hash = "#/exec/" + encodeURIComponent(r.executionArn);
    } catch (e) { msg.replaceChildren(errorBox(e)); }
  });
  out.append(h("section", { class: "card", "aria-labelledby": "s-h" }, h("h2", { id: "s-h" }, "Start an execution"), form));

  // executions list
  const filter = h("select", { id: "status-filter" },
    ["", "RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"].map((v) => h("option", { value: v }, v || "All")));
  const refresh = h("button", { type: "button", class: "secondary" }, "Refresh");
  const body = h("div", {});
  const more = h("button", { type: "button", class: "secondary", hidden: true }, "Load more");
  let next = null;
  let tbody = null;
  const load = async (append) => {
    if (!append) { next = null; body.replaceChildren(h("p", { class: "muted" }, "Loading…")); }
    const req = { stateMachineArn: arn, maxResults: 100 };
    if (filter.value) req.statusFilter = filter.value;
    if (append && next) req.nextToken = next;
    let r;
    try { r = await api("ListExecutions", req); } catch (e) { body.replaceChildren(errorBox(e)); return; }
    next = r.nextToken || null;
    more.hidden = !next;
    const rows = (r.executions || []).map((x) => h("tr", {},
      h("td", {}, execLink(x.executionArn, x.name)), h("td", {}, badge(x.status)),
      h("td", {}, fmtTime(x.startDate)), h("td", {}, fmtTime(x.stopDate)),
      h("td", {}, x.stopDate ? fmtDur(toMs(x.stopDate) - toMs(x.startDate)) : "")));
    if (!append) {
      if (!rows.length) { body.replaceChildren(h("p", { class: "muted" }, "No executions" + (filter.value ? " with status " + filter.value : "") + ".")); return; }
      tbody = h("tbody", {}, rows);
      body.replaceChildren(h("table", {},
        h("thead", {}, h("tr", {}, ["Name", "Status", "Started", "Stopped", "Duration"].map((c) => h("th", { scope: "col" }, c)))), tbody));
    } else if (tbody) tbody.append(...rows);
  };
  filter.addEventListener("change", () => load(false));
  refresh.addEventListener("click", () => load(false));
  more.addEventListener("click", () => load(true));
  out.append(h("section", { class: "card", "aria-labelledby": "e-h" }, h("h2", { id: "e-h" }, "Executions"),
    h("div", { class: "row" }, h("label", { for: "status-filter" }, "Status"), filter, refresh), body, more));
  load(false);
}

// State statuses and Gantt intervals from a history.
function analyse(events, execStatus) {
  const status = {};
  const open = {};
  const intervals = [];
  for (const ev of events) {
    const t = ev.type || "";
    const ts = toMs(ev.timestamp);
    if (t.endsWith("StateEntered")) {
      const n = (ev.stateEnteredEventDetails || {}).name;
      if (n === undefined) continue;
      status[n] = "running";
      const iv = { name: n, start: ts, end: null, status: "running" };
      intervals.push(iv);
      (open[n] = open[n] || []).push(iv);
    } else if (t.endsWith("StateExited")) {
      const n = (ev.stateExitedEventDetails || {}).name;
      if (n === undefined) continue;
      status[n] = "succeeded";
      const iv = (open[n] || []).shift();
      if (iv) { iv.end = ts; iv.status = "succeeded"; }
    } else if (/(Failed|TimedOut|Aborted)$/.test(t)) {
      // the most recently entered state still open takes the blame
      let last = null;
      for (const iv of intervals) if (iv.end === null && (!last || iv.start >= last.start)) last = iv;
      if (last) { status[last.name] = "failed"; last.status = "failed"; }
      if (t.startsWith("Execution")) {
        for (const iv of intervals) if (iv.end === null) { iv.status = "failed"; iv.end = ts; status[iv.name] = "failed"; }
      }
    }
  }
  if (execStatus && execStatus !== "RUNNING") {
    for (const iv of intervals) if (iv.end === null) { iv.end = iv.start; }
  }
  return { status, intervals };
}

function renderGantt(intervals, t0) {
  const MAX = 500;
  const shown = intervals.slice(0, MAX);
  if (!shown.length) return h("p", { class: "muted" }, "No state has been entered yet.");
  const now = Date.now();
  const ends = shown.map((iv) => iv.end === null ? now : iv.end);
  const start = Math.min(t0 || Infinity, ...shown.map((iv) => iv.start));
  const span = Math.max(1, Math.max(...ends) - start);
  const LW = 190, RW = 80, BW = 700, RH = 22;
  const width = LW + BW + RW, height = 24 + shown.length * RH;
  const svg = s("svg", { class: "gantt", width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": "Gantt chart of " + shown.length + " state runs over " + fmtDur(span) });
  for (let i = 0; i <= 4; i++) {
    const x = LW + (BW * i) / 4;
    svg.append(s("line", { class: "axis", x1: x, x2: x, y1: 14, y2: height }));
    svg.append(s("text", { x: x - 10, y: 11 }, fmtDur((span * i) / 4)));
  }
  shown.forEach((iv, i) => {
    const end = ends[i];
    const x = LW + ((iv.start - start) / span) * BW;
    const w = Math.max(2, ((end - iv.start) / span) * BW);
    const y = 20 + i * RH;
    const label = iv.name.length > 28 ? iv.name.slice(0, 27) + "…" : iv.name;
    svg.append(s("g", {},
      s("title", {}, iv.name + ": " + fmtDur(end - iv.start) + " (" + iv.status + ")"),
      s("text", { x: 4, y: y + 13 }, label),
      s("rect", { class: "bar " + iv.status, x, y: y + 3, width: w, height: RH - 8, rx: 2 }),
      s("text", { x: Math.min(x + w + 4, LW + BW + 4), y: y + 13 }, fmtDur(end - iv.start))));
  });
  const wrap = h("div", {}, svg);
  if (intervals.length > MAX) wrap.append(h("p", { class: "muted" }, "Showing the first " + MAX + " of " + intervals.length + " state runs."));
  return wrap;
}

const openEvents = new Set();

function renderHistory(events) {
  const t0 = events.length ? toMs(events[0].timestamp) : 0;
  return h("table", { class: "history" },
    h("thead", {}, h("tr", {}, ["ID", "Type", "State", "Elapsed", "Time", "Details"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, events.map((ev) => {
      const detailsKey = Object.keys(ev).find((k) => k.endsWith("EventDetails"));
      const det = detailsKey ? ev[detailsKey] : null;
      const d = h("details", { open: openEvents.has(ev.id) },
        h("summary", {}, "JSON"), h("pre", {}, JSON.stringify(ev, null, 2)));
      d.addEventListener("toggle", () => { if (d.open) openEvents.add(ev.id); else openEvents.delete(ev.id); });
      return h("tr", {},
        h("td", {}, ev.id), h("td", {}, ev.type), h("td", {}, det && det.name ? det.name : ""),
        h("td", {}, fmtDur(toMs(ev.timestamp) - t0)), h("td", {}, fmtTime(ev.timestamp)), h("td", {}, d));
    })));
}

async function fetchHistory(arn) {
  const events = [];
  let token;
  do {
    const req = { executionArn: arn, maxResults: 1000 };
    if (token) req.nextToken = token;
    const r = await api("GetExecutionHistory", req);
    events.push(...(r.events || []));
    token = r.nextToken;
  } while (token && events.length < 100000);
  return events;
}

async function viewExecution(arn, seq, refreshing) {
  let ex, events, sm;
  try {
    ex = await api("DescribeExecution", { executionArn: arn });
    [events, sm] = await Promise.all([
      fetchHistory(arn),
      api("DescribeStateMachine", { stateMachineArn: ex.stateMachineArn }).catch(() => null),
    ]);
  } catch (e) {
    if (!refreshing) show(h("div", {}, h("p", {}, h("a", { href: "#/" }, "← State machines")), errorBox(e)), seq);
    return;
  }
  if (seq !== renderSeq) return;
  let def = null;
  try { def = sm ? JSON.parse(sm.definition) : null; } catch (_) { def = null; }
  const { status, intervals } = analyse(events, ex.status);
  const stopMsg = h("span", { role: "status" });
  const stop = ex.status === "RUNNING"
    ? h("button", { type: "button", class: "danger", onclick: async () => {
      if (!confirm("Stop execution " + ex.name + "?")) return;
      try { await api("StopExecution", { executionArn: arn, error: "Stopped", cause: "stopped from the weft UI" }); stopMsg.textContent = "Stopping…"; route(); } catch (e) { stopMsg.replaceChildren(errorBox(e)); }
    } }, "Stop execution")
    : null;
  const out = h("div", {},
    h("p", {}, smLink(ex.stateMachineArn, "← " + nameOfArn(ex.stateMachineArn))),
    h("h1", {}, ex.name, " ", badge(ex.status)),
    h("section", { class: "card" },
      h("dl", { class: "kv" },
        h("dt", {}, "ARN"), h("dd", {}, ex.executionArn),
        h("dt", {}, "Started"), h("dd", {}, fmtTime(ex.startDate)),
        h("dt", {}, "Stopped"), h("dd", {}, ex.stopDate ? fmtTime(ex.stopDate) : "—"),
        h("dt", {}, "Duration"), h("dd", {}, fmtDur((ex.stopDate ? toMs(ex.stopDate) : Date.now()) - toMs(ex.startDate))),
        ex.error ? [h("dt", {}, "Error"), h("dd", { class: "error" }, ex.error)] : null,
        ex.cause ? [h("dt", {}, "Cause"), h("dd", {}, h("pre", {}, pretty(ex.cause)))] : null),
      h("div", { class: "row" }, stop, stopMsg,
        ex.status === "RUNNING" ? h("span", { class: "muted" }, "Refreshing every second") : null)),
    h("div", { class: "grid2" },
      h("section", { class: "card", "aria-labelledby": "in-h" }, h("h2", { id: "in-h" }, "Input"), h("pre", {}, pretty(ex.input ?? ""))),
      h("section", { class: "card", "aria-labelledby": "out-h" }, h("h2", { id: "out-h" }, "Output"),
        h("pre", {}, ex.output !== undefined ? pretty(ex.output) : "—"))),
    h("section", { class: "card", "aria-labelledby": "g-h" }, h("h2", { id: "g-h" }, "Graph"),
      def ? renderGraph(def, status) : h("p", { class: "muted" }, "State machine definition unavailable."), legend()),
    h("section", { class: "card", "aria-labelledby": "ga-h" }, h("h2", { id: "ga-h" }, "State durations"),
      renderGantt(intervals, toMs(ex.startDate))),
    h("section", { class: "card", "aria-labelledby": "h-h" }, h("h2", { id: "h-h" }, "History (" + events.length + " events)"),
      renderHistory(events)));
  const y = window.scrollY;
  show(out, seq, refreshing);
  if (refreshing) window.scrollTo(0, y);
  if (ex.status === "RUNNING") {
    refreshTimer = setTimeout(() => { if (seq === renderSeq) viewExecution(arn, seq, true); }, 1000);
  }
}

// ---- router --------------------------------------------------------------------------------

function show(node, seq, keepFocus) {
  if (seq !== renderSeq) return;
  const active = keepFocus ? document.activeElement : null;
  main.replaceChildren(node);
  if (!keepFocus) main.focus({ preventScroll: true });
  else if (active && active.id && document.getElementById(active.id)) document.getElementById(active.id).focus({ preventScroll: true });
}

function route() {
  clearTimeout(refreshTimer);
  const seq = ++renderSeq;
  const hash = location.hash.replace(/^#/, "") || "/";
  let m;
  if ((m = hash.match(/^\/sm\/(.+)$/))) {
    document.title = "weft server · " + nameOfArn(decodeURIComponent(m[1]));
    viewStateMachine(decodeURIComponent(m[1]), seq);
  } else if ((m = hash.match(/^\/exec\/(.+)$/))) {
    document.title = "weft server · execution " + nameOfArn(decodeURIComponent(m[1]));
    openEvents.clear();
    viewExecution(decodeURIComponent(m[1]), seq, false);
  } else {
    document.title = "weft server";
    viewList(seq);
  }
}

setupLogin();
window.addEventListener("hashchange", route);
route();
