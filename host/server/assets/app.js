// weft server UI: a small single-page app over the Step Functions API (POST / with
// X-Amz-Target) and the UI's JSON endpoints under /v1. No framework, no build step.
// Views are chosen by the location hash:
//   #/                      state machines: executions by status over the last 24 h
//   #/sm/<stateMachineArn>  a state machine: graph, start form, its executions
//   #/executions            executions of every state machine (filters, paging)
//   #/exec/<executionArn>   an execution: status, actions, waiting tokens, input/output, graph
//                           (live), Gantt chart, task logs, history
//   #/dags                  DAG files: import errors, pause switches, recent runs, next run
//   #/dag/<id>              a DAG: pause, trigger form (params, conf), grid of runs x tasks
//                           (a task instance's logs, marks, clear), a run's Gantt chart and
//                           marks, graph with task groups, the file's code
//   #/assets                assets (datasets): producers, consumers, last event; recent events
//   #/plugins               installed plugins, their requested grant and their users
//   #/workers               connected remote workers (queues, slots, current tasks), queue depths
"use strict";

const TOKEN_KEY = "weft.token";
const main = document.getElementById("main");
let refreshTimer = null;
let renderSeq = 0;
let liveSource = null;
// Render timings (ms) of the views, read by the browser tests: {view, ms, items}.
window.weftPerf = [];

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
function card(title, id, ...children) {
  return h("section", { class: "card", "aria-labelledby": id }, h("h2", { id }, title), ...children);
}
function perf(view, t0, items) {
  void main.offsetHeight; // include style and layout in the measure
  const ms = performance.now() - t0;
  window.weftPerf.push({ view, ms: Math.round(ms * 10) / 10, items });
  return ms;
}
// A JSON text field's problem, or null when it parses.
function jsonProblem(text) {
  try { JSON.parse(text); return null; } catch (e) { return e.message; }
}

// ---- API -----------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(type, message, status) { super(message); this.type = type; this.status = status; }
}

function token() { return localStorage.getItem(TOKEN_KEY); }

async function api(action, body) {
  const headers = {
    "X-Amz-Target": "AWSStepFunctions." + action,
    "Content-Type": "application/x-amz-json-1.0",
  };
  if (token()) headers.Authorization = "Bearer " + token();
  const resp = await fetch("/", { method: "POST", headers, body: JSON.stringify(body || {}) });
  return decode(resp);
}

// GET /v1/... (the UI's own endpoints).
async function rest(path, body) {
  const headers = {};
  if (token()) headers.Authorization = "Bearer " + token();
  const init = { headers };
  if (body !== undefined) {
    init.method = "POST";
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(path, init);
  return decode(resp);
}

// PATCH or POST a JSON body (Airflow's API under /api/v2).
async function send(method, path, body) {
  const headers = { "Content-Type": "application/json" };
  if (token()) headers.Authorization = "Bearer " + token();
  const resp = await fetch(path, { method, headers, body: JSON.stringify(body || {}) });
  return decode(resp);
}

async function decode(resp) {
  const text = await resp.text();
  let data = {};
  try { data = text ? JSON.parse(text) : {}; } catch (_) { data = { message: text }; }
  if (!resp.ok) {
    // (Airflow's API answers errors as {"detail": "..."}, a request it cannot validate as
    // {"detail": [{"loc": ["body", "conf"], "msg": "..."}]})
    const detail = typeof data.detail === "string" ? data.detail
      : Array.isArray(data.detail) ? data.detail.map((x) => ((x.loc || []).slice(1).join(".") || "request") + ": " + x.msg).join("; ")
      : null;
    throw new ApiError(data.__type || "HTTP " + resp.status, data.message || data.Message || detail || text, resp.status);
  }
  return data;
}

function isAuthError(e) {
  // a key the server does not know, or none; AccessDeniedException is a known key without the
  // permission: logging in again does not help
  return e && /MissingAuthentication|UnrecognizedClient|IncompleteSignature|InvalidSignature/.test(e.type || "");
}

function errorBox(e) {
  const auth = isAuthError(e);
  // a known key without the permission (Airflow's 403, the Step Functions API's AccessDenied)
  const denied = !auth && e && (e.status === 403 || /AccessDenied/.test(e.type || ""));
  if (auth) setTimeout(() => document.getElementById("token").focus(), 0);
  return h("div", { class: "error" + (denied ? " denied" : ""), role: "alert" },
    denied ? "Not allowed: " : "",
    (e && e.type && !denied ? e.type + ": " : "") + (e && e.message ? e.message : String(e)),
    auth ? h("div", { class: "muted" }, "Log in: enter a secret access key of $WEFT_HOME/credentials above and press Log in.") : null,
    denied ? h("div", { class: "muted" }, "Your key's policy does not grant this action; nothing was changed. Ask for a key whose policy does, or log in with one.") : null);
}

// ---- login ---------------------------------------------------------------------------------

function setupLogin() {
  const form = document.getElementById("login");
  const input = document.getElementById("token");
  const status = document.getElementById("login-status");
  const show = () => { status.textContent = token() ? "Logged in (token saved)" : "Not logged in"; };
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

const NW = 180, NH = 44, GX = 28, GY = 48, PADB = 14, HEAD = 26;

function successors(st) {
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
}

function innerDefs(st) {
  if (st.Type === "Parallel") return (st.Branches || []).filter((b) => b && b.States);
  if (st.Type === "Map") {
    const p = st.ItemProcessor || st.Iterator;
    return p && p.States ? [p] : [];
  }
  return [];
}

// Lays out one block (a state machine, a Parallel branch or a Map's processor): states in
// rows by BFS depth from StartAt; Parallel and Map states are boxes holding their own blocks.
function layoutBlock(def) {
  const states = (def && def.States) || {};
  const names = Object.keys(states);
  const depth = {};
  const order = [];
  if (def && def.StartAt && states[def.StartAt]) {
    depth[def.StartAt] = 0;
    const queue = [def.StartAt];
    for (let qi = 0; qi < queue.length; qi++) {
      const n = queue[qi];
      order.push(n);
      for (const e of successors(states[n] || {})) {
        if (!(e.to in states) || e.to in depth) continue;
        depth[e.to] = depth[n] + 1;
        queue.push(e.to);
      }
    }
  }
  let maxDepth = order.length ? Math.max(...order.map((n) => depth[n])) : -1;
  for (const n of names) if (!(n in depth)) { depth[n] = ++maxDepth; order.push(n); }
  const nodes = {};
  for (const n of order) {
    const st = states[n] || {};
    const inner = innerDefs(st).map(layoutBlock);
    let w = NW, hgt = NH;
    if (inner.length) {
      w = Math.max(NW, inner.reduce((a, b) => a + b.w, 0) + GX * (inner.length - 1) + 2 * PADB);
      hgt = HEAD + Math.max(...inner.map((b) => b.h)) + PADB;
    }
    nodes[n] = { name: n, st, w, h: hgt, inner, x: 0, y: 0 };
  }
  const rows = [];
  for (const n of order) (rows[depth[n]] = rows[depth[n]] || []).push(n);
  const rowList = rows.filter(Boolean);
  const width = Math.max(NW, ...rowList.map((r) => r.reduce((a, n) => a + nodes[n].w, 0) + GX * (r.length - 1)));
  let y = 0;
  for (const r of rowList) {
    const rw = r.reduce((a, n) => a + nodes[n].w, 0) + GX * (r.length - 1);
    let x = (width - rw) / 2;
    const rh = Math.max(...r.map((n) => nodes[n].h));
    for (const n of r) { nodes[n].x = x; nodes[n].y = y; x += nodes[n].w + GX; }
    y += rh + GY;
  }
  const edges = [];
  for (const n of order) for (const e of successors(states[n] || {})) if (e.to in nodes) edges.push({ from: n, ...e });
  return { def, nodes, order, depth, edges, w: width + 60, h: Math.max(NH, y - GY) };
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

let markerSeq = 0;

function drawBlock(g, block, ox, oy, marker) {
  const { nodes, edges, depth, def } = block;
  const start = def && nodes[def.StartAt];
  if (start) {
    const cx = ox + start.x + start.w / 2;
    g.append(s("circle", { class: "start", cx, cy: oy - 14, r: 5 }));
    g.append(s("path", { class: "edge", d: `M${cx},${oy - 9} L${cx},${oy + start.y}`, "marker-end": marker }));
  }
  edges.forEach((e, i) => {
    const a = nodes[e.from], b = nodes[e.to];
    let d, lx, ly;
    if (depth[e.to] > depth[e.from]) {
      const x1 = ox + a.x + a.w / 2, y1 = oy + a.y + a.h, x2 = ox + b.x + b.w / 2, y2 = oy + b.y;
      const my = (y1 + y2) / 2;
      d = `M${x1},${y1} C${x1},${my} ${x2},${my} ${x2},${y2}`;
      lx = (x1 + x2) / 2 + 4; ly = my - 2;
    } else {
      const x1 = ox + a.x + a.w, y1 = oy + a.y + Math.min(a.h, NH) / 2;
      const x2 = ox + b.x + b.w, y2 = oy + b.y + Math.min(b.h, NH) / 2;
      const xr = Math.max(x1, x2) + 24 + (i % 3) * 10;
      d = `M${x1},${y1} C${xr},${y1} ${xr},${y2} ${x2},${y2}`;
      lx = xr - 8; ly = (y1 + y2) / 2;
    }
    g.append(s("path", { class: "edge " + e.kind, d, "marker-end": marker }));
    if (e.label) g.append(s("text", { class: "elabel", x: lx, y: ly }, e.label.slice(0, 28)));
  });
  for (const n of block.order) {
    const node = nodes[n];
    const st = node.st;
    const end = st.End || st.Type === "Succeed" || st.Type === "Fail";
    const grp = s("g", { class: "node " + (st.Type || ""), "data-state": n, transform: `translate(${ox + node.x},${oy + node.y})` },
      s("title", {}, n + " (" + (st.Type || "?") + ")" + (end ? ", end" : "")),
      s("rect", { width: node.w, height: node.h, rx: st.Type === "Choice" ? 16 : 5 }),
      s("text", { x: 10, y: 17 }, n.length > 26 ? n.slice(0, 25) + "…" : n),
      s("text", { class: "type", x: 10, y: node.inner.length ? 17 : 33, dx: node.inner.length ? Math.min(node.w - 150, 170) : 0,
        "data-label": node.inner.length ? typeLabel(st) : typeLabel(st) + (end ? " · end" : "") },
        node.inner.length ? typeLabel(st) : typeLabel(st) + (end ? " · end" : "")));
    g.append(grp);
    let ix = ox + node.x + PADB;
    for (const inner of node.inner) {
      drawBlock(g, inner, ix, oy + node.y + HEAD + 14, marker);
      ix += inner.w + GX;
    }
  }
}

// Renders the ASL `def` as an SVG flow graph (Parallel branches and Map processors nested).
function renderGraph(def, status) {
  const block = layoutBlock(def);
  const PAD = 20;
  const width = block.w + PAD * 2, height = block.h + PAD * 2 + 20;
  const id = "arrow" + (++markerSeq);
  const svg = s("svg", { class: "graph", width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": "State machine graph with " + Object.keys((def && def.States) || {}).length + " top-level states" });
  svg.append(s("defs", {},
    s("marker", { id, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
      s("path", { d: "M0,0 L10,5 L0,10 z", fill: "#8a93a3" }))));
  const g = s("g", {});
  drawBlock(g, block, PAD, PAD + 20, `url(#${id})`);
  svg.append(g);
  if (status) colourGraph(svg, status);
  return svg;
}

const STATE_CLASSES = ["running", "succeeded", "failed", "caught"];

// Colours the graph's states in place: status maps state names to a class of STATE_CLASSES.
function colourGraph(svg, status) {
  for (const g of svg.querySelectorAll("g.node")) {
    const st = status[g.getAttribute("data-state")];
    for (const c of STATE_CLASSES) g.classList.toggle(c, c === st);
    const t = g.querySelector("title");
    if (t) t.textContent = t.textContent.replace(/: (running|succeeded|failed|caught)$/, "") + (st ? ": " + st : "");
    // the status in words too, so colour is not the only cue
    const label = g.querySelector("text.type");
    if (label && label.dataset.label) label.textContent = label.dataset.label + (st ? " · " + st : "");
  }
}

// The states' statuses as a table (the graph's text equivalent).
function statusTable(status) {
  const names = Object.keys(status);
  if (!names.length) return h("p", { class: "muted" }, "No state has been entered yet.");
  return h("table", { class: "state-status" },
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "State"), h("th", { scope: "col" }, "Status"))),
    h("tbody", {}, names.map((n) => h("tr", {}, h("td", {}, n), h("td", {}, h("span", { class: "st " + status[n] }, status[n]))))));
}

// A graph wider than its box (a narrow window) starts scrolled to its centre line, where the
// start state is.
function centre(box) {
  if (box.scrollWidth > box.clientWidth) box.scrollLeft = (box.scrollWidth - box.clientWidth) / 2;
}

function legend() {
  return h("div", { class: "legend", "aria-hidden": "true" },
    h("span", { class: "running" }, "running"),
    h("span", { class: "succeeded" }, "succeeded"),
    h("span", { class: "caught" }, "failed, caught"),
    h("span", { class: "failed" }, "failed"));
}

// ---- state machines ------------------------------------------------------------------------

// The landing page: per state machine, executions by status over the last 24 hours (running
// ones whenever they started), as the Step Functions console shows them.
const COUNT_LABELS = { RUNNING: "Running", SUCCEEDED: "Succeeded", FAILED: "Failed", TIMED_OUT: "Timed out", ABORTED: "Aborted", PENDING_REDRIVE: "Pending redrive" };

function countCell(m, status) {
  if (!m.executions) return h("td", { class: "count", "data-status": status }, h("span", { class: "muted" }, "–"));
  const n = m.executions[status] || 0;
  return h("td", { class: "count" + (n ? " some " + status : ""), "data-status": status },
    n ? h("span", { class: "badge " + status, title: n + " " + COUNT_LABELS[status].toLowerCase() }, String(n)) : h("span", { class: "muted" }, "0"));
}

// Re-fetches a landing page's data every 30 s while it is shown (not while the keyboard is
// inside it, so focus is never lost).
function keepFresh(seq, box, load) {
  const tick = async () => {
    if (seq !== renderSeq) return;
    if (!box.contains(document.activeElement)) {
      try { await load(); } catch (_) { /* keeps the data shown */ }
    }
    if (seq === renderSeq) refreshTimer = setTimeout(tick, 30000);
  };
  refreshTimer = setTimeout(tick, 30000);
}

async function viewList(seq) {
  const t0 = performance.now();
  const out = h("div", {}, h("h1", {}, "State machines"));
  const box = h("section", { class: "card", "aria-label": "State machines" }, h("p", { class: "muted" }, "Loading…"));
  out.append(box);
  show(out, seq);
  let r;
  try { r = await rest("/v1/state-machines/summary"); } catch (e) { box.replaceChildren(errorBox(e)); return; }
  if (seq !== renderSeq) return;
  renderSmLanding(box, r);
  perf("state-machines", t0, (r.stateMachines || []).length);
  keepFresh(seq, box, async () => {
    const fresh = await rest("/v1/state-machines/summary");
    if (seq === renderSeq) renderSmLanding(box, fresh);
  });
}

function renderSmLanding(box, r) {
  const all = r.stateMachines || [];
  if (!all.length) {
    box.replaceChildren(h("p", {}, "No state machines yet. Create one with ",
      h("code", {}, "aws stepfunctions create-state-machine --endpoint-url …"), "."));
    return;
  }
  // PENDING_REDRIVE only when some state machine has one
  const statuses = (r.statuses || Object.keys(COUNT_LABELS)).filter((st) => st !== "PENDING_REDRIVE" || all.some((m) => m.executions && m.executions[st]));
  box.replaceChildren(
    h("p", { class: "muted", id: "sm-window" }, "Executions started in the last " + r.windowHours + " hours (since " + fmtTime(r.since) + "); running executions are counted whenever they started. Express executions are not recorded."),
    h("div", { class: "scroll" }, h("table", { class: "sm-landing" },
      h("thead", {}, h("tr", {},
        h("th", { scope: "col" }, "Name"), h("th", { scope: "col" }, "Type"),
        statuses.map((st) => h("th", { scope: "col", class: "count" }, COUNT_LABELS[st])),
        h("th", { scope: "col" }, "Last execution"), h("th", { scope: "col" }, "Created"))),
      h("tbody", {}, all.map((m) => h("tr", { "data-sm": m.name },
        h("th", { scope: "row" }, smLink(m.stateMachineArn, m.name)), h("td", {}, m.type),
        m.type === "EXPRESS" && !m.executions
          ? h("td", { colspan: statuses.length, class: "muted" }, "not recorded (Express)")
          : statuses.map((st) => countCell(m, st)),
        h("td", { class: "last-exec" }, m.lastExecutionDate ? fmtTime(m.lastExecutionDate) : h("span", { class: "muted" }, "never")),
        h("td", {}, fmtTime(m.creationDate))))))));
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
  const graphBox = h("div", { class: "scroll" }, def ? renderGraph(def, null) : h("p", { class: "error" }, "The definition is not JSON."));
  out.append(card("Graph", "g-h", graphBox,
    h("details", {}, h("summary", {}, "Definition (ASL)"), h("pre", {}, pretty(sm.definition)))));
  centre(graphBox);
  out.append(card("Start an execution", "s-h", startForm(arn)));
  out.append(executionsCard({ stateMachine: sm.name }));
}

function startForm(arn) {
  const msg = h("div", { id: "start-msg", role: "alert" });
  const nameIn = h("input", { id: "exec-name", name: "name", placeholder: "generated if empty", autocomplete: "off" });
  const inputIn = h("textarea", { id: "exec-input", name: "input", spellcheck: "false", "aria-describedby": "start-msg" });
  inputIn.value = "{}";
  const form = h("form", { class: "start-form", novalidate: true },
    h("div", { class: "field" }, h("label", { for: "exec-name" }, "Execution name (optional)"), nameIn),
    h("div", { class: "field" }, h("label", { for: "exec-input" }, "Input (JSON)"), inputIn),
    h("div", { class: "row" }, h("button", { type: "submit", id: "start-btn" }, "Start execution"), msg));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    msg.replaceChildren();
    msg.className = "";
    const problem = jsonProblem(inputIn.value);
    if (problem) {
      msg.className = "error";
      msg.textContent = "Input is not valid JSON: " + problem;
      inputIn.setAttribute("aria-invalid", "true");
      inputIn.focus();
      return;
    }
    inputIn.removeAttribute("aria-invalid");
    const body = { stateMachineArn: arn, input: inputIn.value };
    if (nameIn.value.trim()) body.name = nameIn.value.trim();
    try {
      const r = await api("StartExecution", body);
      location.hash = "#/exec/" + encodeURIComponent(r.executionArn);
    } catch (e) { msg.replaceChildren(errorBox(e)); }
  });
  return form;
}

// ---- executions list -----------------------------------------------------------------------

// The executions table with filters (status, name, start time) and paging; `fixed` holds
// filters that are not shown (the state machine on its own page).
function executionsCard(fixed) {
  const uid = fixed.stateMachine ? "sm" : "all";
  const status = h("select", { id: uid + "-status", name: "status" },
    ["", "RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"].map((v) => h("option", { value: v }, v || "Any")));
  const name = h("input", { id: uid + "-name", name: "name", type: "search", placeholder: "part of the name", autocomplete: "off" });
  const from = h("input", { id: uid + "-from", name: "from", type: "datetime-local" });
  const to = h("input", { id: uid + "-to", name: "to", type: "datetime-local" });
  const smSel = fixed.stateMachine ? null : h("input", { id: uid + "-sm", name: "stateMachine", placeholder: "exact name", autocomplete: "off" });
  const body = h("div", { "aria-live": "polite" });
  const prev = h("button", { type: "button", class: "secondary", disabled: true }, "← Previous page");
  const next = h("button", { type: "button", class: "secondary", disabled: true }, "Next page →");
  const pageInfo = h("span", { class: "muted" });
  const pages = [null]; // nextToken of each page shown so far
  let page = 0;
  const load = async () => {
    const q = new URLSearchParams({ limit: "50" });
    if (fixed.stateMachine) q.set("stateMachine", fixed.stateMachine);
    else if (smSel.value.trim()) q.set("stateMachine", smSel.value.trim());
    if (status.value) q.set("status", status.value);
    if (name.value.trim()) q.set("name", name.value.trim());
    if (from.value) q.set("from", String(new Date(from.value).getTime()));
    if (to.value) q.set("to", String(new Date(to.value).getTime()));
    if (pages[page]) q.set("next", pages[page]);
    let r;
    try { r = await rest("/v1/executions?" + q); } catch (e) { body.replaceChildren(errorBox(e)); return; }
    pages[page + 1] = r.nextToken || null;
    prev.disabled = page === 0;
    next.disabled = !r.nextToken;
    const n = (r.executions || []).length;
    pageInfo.textContent = n ? `${page * 50 + 1}–${page * 50 + n} of ${r.total}` : "";
    if (!n) { body.replaceChildren(h("p", { class: "muted" }, "No executions match.")); return; }
    body.replaceChildren(h("table", { class: "executions" },
      h("thead", {}, h("tr", {}, ["Name", fixed.stateMachine ? null : "State machine", "Status", "Started", "Stopped", "Duration"]
        .filter(Boolean).map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, r.executions.map((x) => h("tr", {},
        h("td", {}, execLink(x.executionArn, x.name)),
        fixed.stateMachine ? null : h("td", {}, smLink(x.stateMachineArn, x.stateMachineName)),
        h("td", {}, badge(x.status)),
        h("td", {}, fmtTime(x.startDate)), h("td", {}, fmtTime(x.stopDate)),
        h("td", {}, x.stopDate ? fmtDur(toMs(x.stopDate) - toMs(x.startDate)) : ""))))));
  };
  const form = h("form", { class: "filters", role: "search", "aria-label": "Filter executions" },
    h("div", { class: "field" }, h("label", { for: uid + "-status" }, "Status"), status),
    h("div", { class: "field" }, h("label", { for: uid + "-name" }, "Name contains"), name),
    smSel ? h("div", { class: "field" }, h("label", { for: uid + "-sm" }, "State machine"), smSel) : null,
    h("div", { class: "field" }, h("label", { for: uid + "-from" }, "Started after"), from),
    h("div", { class: "field" }, h("label", { for: uid + "-to" }, "Started before"), to),
    h("div", { class: "field" }, h("span", { "aria-hidden": "true" }, " "), h("button", { type: "submit" }, "Apply filters")));
  form.addEventListener("submit", (ev) => { ev.preventDefault(); pages.length = 1; page = 0; load(); });
  status.addEventListener("change", () => { pages.length = 1; page = 0; load(); });
  prev.addEventListener("click", () => { if (page > 0) { page--; load(); } });
  next.addEventListener("click", () => { if (pages[page + 1]) { page++; load(); } });
  load();
  return card("Executions", uid + "-e-h", form, body, h("div", { class: "row" }, prev, next, pageInfo));
}

function viewExecutions(seq) {
  show(h("div", {}, h("h1", {}, "Executions"), executionsCard({})), seq);
}

// ---- execution -----------------------------------------------------------------------------

// State statuses (running, succeeded, failed, caught) and Gantt intervals from a history.
class Analysis {
  constructor() { this.status = {}; this.open = {}; this.intervals = []; this.failedIn = {}; }
  add(ev) {
    const t = ev.type || "";
    const ts = toMs(ev.timestamp);
    if (t.endsWith("StateEntered")) {
      const n = (ev.stateEnteredEventDetails || {}).name;
      if (n === undefined) return;
      this.status[n] = "running";
      delete this.failedIn[n];
      const iv = { name: n, start: ts, end: null, status: "running" };
      this.intervals.push(iv);
      (this.open[n] = this.open[n] || []).push(iv);
    } else if (t.endsWith("StateExited")) {
      const n = (ev.stateExitedEventDetails || {}).name;
      if (n === undefined) return;
      const st = this.failedIn[n] ? "caught" : "succeeded";
      this.status[n] = st;
      const iv = (this.open[n] || []).shift();
      if (iv) { iv.end = ts; iv.status = st; }
    } else if (/(Failed|TimedOut|Aborted)$/.test(t)) {
      if (t.startsWith("Execution")) {
        for (const iv of this.intervals) if (iv.end === null) { iv.status = "failed"; iv.end = ts; this.status[iv.name] = "failed"; }
        return;
      }
      // the most recently entered state still open takes the blame (caught if it exits later)
      let last = null;
      for (const n in this.open) for (const iv of this.open[n]) if (!last || iv.start >= last.start) last = iv;
      if (last) { this.status[last.name] = "failed"; last.status = "failed"; this.failedIn[last.name] = true; }
    } else if (t === "TaskScheduled" || t === "TaskStarted") {
      // a retry after a failure runs again
      let last = null;
      for (const n in this.open) for (const iv of this.open[n]) if (!last || iv.start >= last.start) last = iv;
      if (last && this.failedIn[last.name]) { this.status[last.name] = "running"; last.status = "running"; delete this.failedIn[last.name]; }
    }
  }
  finish(execStatus) {
    if (execStatus && execStatus !== "RUNNING") for (const iv of this.intervals) if (iv.end === null) iv.end = iv.start;
  }
}

const GANTT_MAX = 500;

function renderGantt(intervals, t0, running) {
  const shown = intervals.slice(0, GANTT_MAX);
  if (!shown.length) return h("p", { class: "muted" }, "No state has been entered yet.");
  const now = Date.now();
  const ends = shown.map((iv) => iv.end === null ? now : iv.end);
  let start = t0 || Infinity, endMax = 0;
  for (const iv of shown) if (iv.start < start) start = iv.start;
  for (const e of ends) if (e > endMax) endMax = e;
  const span = Math.max(1, endMax - start);
  const LW = 190, RW = 80, BW = 700, RH = 22;
  const width = LW + BW + RW, height = 24 + shown.length * RH;
  const svg = s("svg", { class: "gantt", width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": "Gantt chart of " + shown.length + " state runs over " + fmtDur(span) + (running ? " (running)" : "") });
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
  const wrap = h("div", { class: "scroll" }, svg);
  if (intervals.length > GANTT_MAX) wrap.append(h("p", { class: "muted" }, "Showing the first " + GANTT_MAX + " of " + intervals.length + " state runs."));
  return wrap;
}

const HISTORY_PAGE = 1000;

// The history table: rows rendered a page at a time, each event's JSON built when opened.
class HistoryTable {
  constructor(events) {
    this.events = events;
    this.t0 = events.length ? toMs(events[0].timestamp) : 0;
    this.shown = 0;
    this.tbody = h("tbody", {});
    this.more = h("button", { type: "button", class: "secondary" }, "");
    this.more.addEventListener("click", () => this.page());
    this.caption = h("span", { class: "muted", "aria-live": "polite" });
    this.el = h("div", {},
      h("div", { class: "scroll" }, h("table", { class: "history" },
        h("thead", {}, h("tr", {}, ["ID", "Type", "State", "Elapsed", "Time", "Details"].map((c) => h("th", { scope: "col" }, c)))),
        this.tbody)),
      h("div", { class: "row" }, this.more, this.caption));
    this.page();
  }
  row(ev) {
    const key = Object.keys(ev).find((k) => k.endsWith("EventDetails"));
    const det = key ? ev[key] : null;
    const pre = h("pre", {});
    const d = h("details", {}, h("summary", {}, "JSON", h("span", { class: "sr-only" }, " of event " + ev.id)), pre);
    d.addEventListener("toggle", () => { if (d.open && !pre.textContent) pre.textContent = JSON.stringify(ev, null, 2); });
    const cls = /Failed|TimedOut|Aborted/.test(ev.type) ? "ev-bad" : "";
    return h("tr", { class: cls },
      h("td", {}, ev.id), h("td", {}, ev.type), h("td", {}, det && det.name ? det.name : ""),
      h("td", {}, fmtDur(toMs(ev.timestamp) - this.t0)), h("td", {}, fmtTime(ev.timestamp)), h("td", {}, d));
  }
  page() {
    const end = Math.min(this.events.length, this.shown + HISTORY_PAGE);
    const frag = document.createDocumentFragment();
    for (let i = this.shown; i < end; i++) frag.append(this.row(this.events[i]));
    this.tbody.append(frag);
    this.shown = end;
    this.update();
  }
  append(ev) {
    if (!this.events.length) this.t0 = toMs(ev.timestamp);
    this.events.push(ev);
    if (this.shown === this.events.length - 1) { this.tbody.append(this.row(ev)); this.shown++; }
    this.update();
  }
  update() {
    const left = this.events.length - this.shown;
    this.more.hidden = left <= 0;
    this.more.textContent = "Show " + Math.min(left, HISTORY_PAGE) + " more events";
    this.caption.textContent = "Showing " + this.shown + " of " + this.events.length + " events";
  }
}

async function fetchHistory(arn) {
  const events = [];
  let next;
  do {
    const req = { executionArn: arn, maxResults: 1000 };
    if (next) req.nextToken = next;
    const r = await api("GetExecutionHistory", req);
    events.push(...(r.events || []));
    next = r.nextToken;
  } while (next && events.length < 200000);
  return events;
}

function renderTaskLogs(tasks) {
  if (!tasks.length) return h("p", { class: "muted" }, "No task has run in the sandbox yet.");
  return h("div", { class: "tasks" }, tasks.map((t, i) => {
    const err = t.error ? t.error.error + (t.error.cause ? ": " + t.error.cause : "") : null;
    const sum = h("summary", {},
      h("strong", {}, t.state), " · attempt " + t.attempt + " · " + t.plugin,
      t.durationMs !== null && t.durationMs !== undefined ? " · " + fmtDur(t.durationMs) : "",
      t.fuelUsed ? " · fuel " + t.fuelUsed.toLocaleString() : "",
      t.worker ? h("span", { class: "worker" }, " · on worker " + t.worker) : "",
      " ", err ? badge("FAILED") : badge("SUCCEEDED"));
    const audit = (t.audit || []).length
      ? h("table", { class: "audit" },
        h("caption", {}, "Sandbox decisions"),
        h("thead", {}, h("tr", {}, ["Action", "Resource", "Decision", "Statement", "Reason"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, t.audit.map((a) => h("tr", { class: a.decision === "Deny" ? "ev-bad" : "" },
          h("td", {}, a.action), h("td", {}, a.resource), h("td", {}, a.decision), h("td", {}, a.statement || "implicit"), h("td", {}, a.reason || "")))))
      : h("p", { class: "muted" }, "No capability was requested.");
    const logs = (t.logs || []).length
      ? h("table", { class: "logs" }, h("caption", {}, "Log records"),
        h("thead", {}, h("tr", {}, ["At", "Level", "Message"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, t.logs.map((l) => h("tr", {}, h("td", {}, l.at_ms + " ms"), h("td", {}, l.level), h("td", {}, l.message)))))
      : null;
    return h("details", { class: "task", open: i === tasks.length - 1 && !!err }, sum,
      err ? h("p", { class: "error" }, err) : null,
      t.digest ? h("p", { class: "muted mono" }, "digest " + t.digest) : null,
      h("div", { class: "grid2" },
        h("div", {}, h("h3", {}, "stdout"), h("pre", {}, t.stdout || "—")),
        h("div", {}, h("h3", {}, "stderr"), h("pre", {}, t.stderr || "—"))),
      logs, audit);
  }));
}

// The execution log records (what the state machine's loggingConfiguration keeps).
function renderExecLog(records) {
  if (!records.length) return h("p", { class: "muted" }, "Nothing logged yet.");
  return h("div", { class: "scroll" }, h("table", { class: "history" },
    h("caption", {}, "Execution log records"),
    h("thead", {}, h("tr", {}, ["Time", "Type", "Details"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, records.map((r) => {
      const ev = r.event || {};
      const k = Object.keys(ev).find((x) => x.endsWith("EventDetails"));
      return h("tr", {}, h("td", {}, fmtTime(ev.timestamp)), h("td", {}, ev.type || ""),
        h("td", {}, k ? h("pre", {}, pretty(ev[k])) : ""));
    }))));
}

// The waiting `.waitForTaskToken` tasks of an execution, each with success / failure forms.
function renderTokens(tokens, onSent) {
  if (!tokens.length) return h("p", { class: "muted" }, "No task is waiting for a callback.");
  return h("div", {}, tokens.map((t, i) => {
    const out = h("textarea", { id: "tok-out-" + i, class: "short", spellcheck: "false" });
    out.value = "{}";
    const err = h("input", { id: "tok-err-" + i, value: "States.TaskFailed" });
    const cause = h("input", { id: "tok-cause-" + i, placeholder: "why" });
    const msg = h("div", { role: "status", id: "tok-msg-" + i });
    const send = async (action, body) => {
      msg.replaceChildren(); msg.className = "";
      try {
        await api(action, Object.assign({ taskToken: t.taskToken }, body));
        msg.textContent = action === "SendTaskSuccess" ? "Success sent." : "Failure sent.";
        onSent();
      } catch (e) { msg.replaceChildren(errorBox(e)); }
    };
    const ok = h("form", { class: "token-success", novalidate: true },
      h("div", { class: "field" }, h("label", { for: "tok-out-" + i }, "Output (JSON)"), out),
      h("button", { type: "submit" }, "Send task success"));
    ok.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const p = jsonProblem(out.value);
      if (p) { msg.className = "error"; msg.textContent = "Output is not valid JSON: " + p; out.focus(); return; }
      send("SendTaskSuccess", { output: out.value });
    });
    const bad = h("form", { class: "token-failure" },
      h("div", { class: "field" }, h("label", { for: "tok-err-" + i }, "Error"), err),
      h("div", { class: "field" }, h("label", { for: "tok-cause-" + i }, "Cause"), cause),
      h("button", { type: "submit", class: "danger" }, "Send task failure"));
    bad.addEventListener("submit", (ev) => { ev.preventDefault(); send("SendTaskFailure", { error: err.value, cause: cause.value }); });
    return h("div", { class: "token" },
      h("p", {}, h("strong", {}, t.state), " waits since " + fmtTime(t.since),
        t.timeoutSeconds ? " (times out after " + t.timeoutSeconds + " s)" : ""),
      h("p", { class: "mono" }, "Task token: ", h("code", { class: "task-token" }, t.taskToken)),
      h("div", { class: "grid2" }, ok, bad), msg);
  }));
}

async function viewExecution(arn, seq) {
  const t0 = performance.now();
  // subscribe first, so nothing falls between the history read and the stream
  const buffered = [];
  let live = null;
  const es = openLive(arn, (type, data) => { if (live) live(type, data); else buffered.push([type, data]); });
  let ex, events, sm;
  try {
    ex = await api("DescribeExecution", { executionArn: arn });
    [events, sm] = await Promise.all([
      fetchHistory(arn),
      api("DescribeStateMachine", { stateMachineArn: ex.stateMachineArn }).catch(() => null),
    ]);
  } catch (e) {
    if (es) es.close();
    show(h("div", {}, h("p", {}, h("a", { href: "#/executions" }, "← Executions")), errorBox(e)), seq);
    return;
  }
  if (seq !== renderSeq) { if (es) es.close(); return; }
  const tFetched = performance.now();
  let def = null;
  try { def = sm ? JSON.parse(sm.definition) : null; } catch (_) { def = null; }
  const an = new Analysis();
  for (const ev of events) an.add(ev);
  an.finish(ex.status);
  let lastId = events.length ? events[events.length - 1].id : 0;

  const statusBadge = h("span", { id: "exec-status" }, badge(ex.status));
  const liveNote = h("span", { class: "muted", id: "live-note", role: "status" });
  const actionMsg = h("div", { role: "status" });
  const stopBtn = h("button", { type: "button", class: "danger", id: "stop-btn" }, "Stop execution");
  stopBtn.addEventListener("click", async () => {
    if (!confirm("Stop execution " + ex.name + "?")) return;
    try { await api("StopExecution", { executionArn: arn, error: "Stopped", cause: "stopped from the weft UI" }); actionMsg.textContent = "Stop requested."; } catch (e) { actionMsg.replaceChildren(errorBox(e)); }
  });
  const redriveHelp = h("span", { class: "muted", id: "redrive-help" }, "Redrive re-runs only what failed: completed tasks are not run again.");
  const redriveBtn = h("button", { type: "button", class: "secondary", id: "redrive-btn",
    "aria-describedby": "redrive-help" }, "Redrive");
  redriveBtn.addEventListener("click", async () => {
    try { await api("RedriveExecution", { executionArn: arn }); route(); } catch (e) { actionMsg.replaceChildren(errorBox(e)); }
  });
  const details = h("dl", { class: "kv" });
  const outputPre = h("pre", { id: "exec-output" });
  const graphBox = h("div", { class: "scroll" });
  const ganttBox = h("div", {});
  const tasksBox = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  const tokensBox = h("div", { "aria-live": "polite" }, h("p", { class: "muted" }, "Loading…"));
  const mapRunsBox = h("div", { id: "map-runs", "aria-live": "polite" }, h("p", { class: "muted" }, "Loading…"));
  const logLevel = sm && sm.loggingConfiguration && sm.loggingConfiguration.level;
  const logged = !!logLevel && logLevel !== "OFF";
  const logBox = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  const history = new HistoryTable(events);
  const historyTitle = h("h2", { id: "h-h" }, "History");

  const renderSummary = () => {
    statusBadge.replaceChildren(badge(ex.status));
    stopBtn.hidden = ex.status !== "RUNNING";
    const redrivable = ["FAILED", "TIMED_OUT", "ABORTED"].includes(ex.status);
    redriveBtn.hidden = !redrivable; redriveHelp.hidden = !redrivable;
    details.replaceChildren(...[
      h("dt", {}, "ARN"), h("dd", {}, ex.executionArn),
      h("dt", {}, "State machine"), h("dd", {}, smLink(ex.stateMachineArn, nameOfArn(ex.stateMachineArn))),
      h("dt", {}, "Started"), h("dd", {}, fmtTime(ex.startDate)),
      h("dt", {}, "Stopped"), h("dd", {}, ex.stopDate ? fmtTime(ex.stopDate) : "—"),
      h("dt", {}, "Duration"), h("dd", {}, fmtDur((ex.stopDate ? toMs(ex.stopDate) : Date.now()) - toMs(ex.startDate))),
      ex.error ? [h("dt", {}, "Error"), h("dd", { class: "error" }, ex.error)] : null,
      ex.cause ? [h("dt", {}, "Cause"), h("dd", {}, h("pre", {}, pretty(ex.cause)))] : null].flat().filter(Boolean));
    outputPre.textContent = ex.output !== undefined ? pretty(ex.output) : "—";
  };
  let graphSvg = null;
  const statusBox = h("div", {});
  const renderDiagram = () => {
    if (graphSvg) colourGraph(graphSvg, an.status);
    statusBox.replaceChildren(statusTable(an.status));
    ganttBox.replaceChildren(renderGantt(an.intervals, toMs(ex.startDate), ex.status === "RUNNING"));
  };
  const loadTasks = async () => {
    try { const r = await rest("/v1/executions/" + encodeURIComponent(arn) + "/tasks"); tasksBox.replaceChildren(renderTaskLogs(r.tasks || [])); } catch (e) { tasksBox.replaceChildren(errorBox(e)); }
  };
  const loadLog = async () => {
    try { const r = await rest("/v1/logs?limit=1000&execution=" + encodeURIComponent(arn)); logBox.replaceChildren(renderExecLog(r.records || [])); } catch (e) { logBox.replaceChildren(errorBox(e)); }
  };
  // Distributed Maps: each Map Run with its item counts by status
  const loadMapRuns = async () => {
    try {
      const list = await api("ListMapRuns", { executionArn: arn, maxResults: 100 });
      const runs = list.mapRuns || [];
      if (!runs.length) { mapRunsBox.replaceChildren(h("p", { class: "muted" }, "No Distributed Map in this execution.")); return; }
      const cols = ["pending", "running", "succeeded", "failed", "timedOut", "aborted", "total", "resultsWritten"];
      const rows = [];
      for (const r of runs) {
        const d = await api("DescribeMapRun", { mapRunArn: r.mapRunArn });
        const c = d.itemCounts || {};
        rows.push(h("tr", {}, h("td", {}, r.mapRunArn.split(":mapRun:")[1] || r.mapRunArn), h("td", {}, d.status),
          ...cols.map(k => h("td", { "data-count": k }, String(c[k] ?? 0)))));
      }
      mapRunsBox.replaceChildren(h("table", {},
        h("thead", {}, h("tr", {}, h("th", {}, "Map Run"), h("th", {}, "Status"), ...cols.map(k => h("th", {}, k)))),
        h("tbody", {}, ...rows)));
    } catch (e) { mapRunsBox.replaceChildren(errorBox(e)); }
  };
  const loadTokens = async () => {
    try { const r = await rest("/v1/executions/" + encodeURIComponent(arn) + "/tokens"); tokensBox.replaceChildren(renderTokens(r.tokens || [], loadTokens)); } catch (e) { tokensBox.replaceChildren(errorBox(e)); }
  };

  renderSummary();
  if (def) { graphSvg = renderGraph(def, an.status); graphBox.append(graphSvg); } else graphBox.append(h("p", { class: "muted" }, "State machine definition unavailable."));
  renderDiagram();
  const out = h("div", {},
    h("p", {}, h("a", { href: "#/executions" }, "← Executions"), " · ", smLink(ex.stateMachineArn, nameOfArn(ex.stateMachineArn))),
    h("h1", {}, ex.name, " ", statusBadge),
    h("section", { class: "card", "aria-label": "Summary and actions" }, details,
      h("div", { class: "row actions" }, stopBtn, redriveBtn, redriveHelp, liveNote), actionMsg),
    card("Waiting for a callback", "tok-h", tokensBox),
    card("Map Runs", "mr-h", mapRunsBox),
    h("div", { class: "grid2" },
      card("Input", "in-h", h("pre", { id: "exec-input-json" }, pretty(ex.input ?? ""))),
      card("Output", "out-h", outputPre)),
    card("Graph", "g-h", graphBox, legend(),
      h("details", {}, h("summary", {}, "State statuses as a table"), statusBox)),
    card("State durations", "ga-h", ganttBox),
    card("Task logs", "t-h", tasksBox),
    logged ? card("Execution log (" + logLevel + ")", "l-h", logBox) : null,
    h("section", { class: "card", "aria-labelledby": "h-h" }, historyTitle, history.el));
  show(out, seq);
  centre(graphBox);
  perf("execution", tFetched, events.length);
  window.weftPerf.push({ view: "execution+fetch", ms: Math.round((performance.now() - t0) * 10) / 10, items: events.length });
  loadTasks();
  loadTokens();
  loadMapRuns();
  if (logged) loadLog();

  // live updates
  let pending = false;
  const soon = () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; if (seq === renderSeq) renderDiagram(); });
  };
  let tasksTimer = null;
  const refreshSide = () => {
    clearTimeout(tasksTimer);
    tasksTimer = setTimeout(() => { if (seq === renderSeq) { loadTasks(); loadTokens(); loadMapRuns(); if (logged) loadLog(); } }, 150);
  };
  const refreshExec = async () => {
    try { ex = await api("DescribeExecution", { executionArn: arn }); } catch (_) { return; }
    if (seq !== renderSeq) return;
    an.finish(ex.status);
    renderSummary();
    renderDiagram();
    refreshSide();
  };
  const resync = async () => {
    let evs;
    try { evs = await fetchHistory(arn); } catch (_) { return; }
    if (seq !== renderSeq) return;
    for (const ev of evs) if (ev.id > lastId) { an.add(ev); history.append(ev); lastId = ev.id; }
    soon();
  };
  live = (type, data) => {
    if (seq !== renderSeq) return;
    if (type === "history") {
      if (data.id <= lastId) return;
      if (data.id !== lastId + 1) { resync(); return; }
      lastId = data.id;
      an.add(data);
      history.append(data);
      soon();
      if (/^Task|StateExited$/.test(data.type)) refreshSide();
    } else if (type === "status") {
      if (data.status !== ex.status || data.status !== "RUNNING") refreshExec();
      if (data.status !== "RUNNING") { liveNote.textContent = ""; if (es) es.close(); }
    } else if (type === "resync") {
      resync();
    } else if (type === "error") {
      // the stream is gone: poll instead
      liveNote.textContent = "Live updates unavailable; refreshing every 2 s.";
      const poll = async () => {
        if (seq !== renderSeq || ex.status !== "RUNNING") return;
        await resync(); await refreshExec();
        refreshTimer = setTimeout(poll, 2000);
      };
      refreshTimer = setTimeout(poll, 2000);
    }
  };
  if (ex.status === "RUNNING") liveNote.textContent = es ? "Live" : "";
  for (const [type, data] of buffered) live(type, data);
}

// Opens the execution's event stream; `on(type, data)` gets history / status / resync / error.
// The stream is read with fetch() rather than EventSource so that the key travels in the
// Authorization header: a secret in a URL would be kept in server logs, the browser's history
// and Referer headers. Returns an object with close(), or null where streams are unavailable.
function openLive(arn, on) {
  if (liveSource) { liveSource.close(); liveSource = null; }
  if (typeof ReadableStream === "undefined" || typeof AbortController === "undefined" || typeof TextDecoder === "undefined") return null;
  const ctl = new AbortController();
  const src = { close() { ctl.abort(); } };
  liveSource = src;
  let done = false;
  const headers = { Accept: "text/event-stream" };
  if (token()) headers.Authorization = "Bearer " + token();
  const dispatch = (type, text) => {
    let d = null;
    try { d = JSON.parse(text); } catch (_) { return; }
    if (type === "history") { if (d) on("history", d); }
    else if (type === "status") {
      if (!d) return;
      if (d.status !== "RUNNING") { done = true; ctl.abort(); }
      on("status", d);
    } else if (type === "resync") on("resync", null);
  };
  (async () => {
    try {
      const resp = await fetch("/v1/executions/" + encodeURIComponent(arn) + "/events", { headers, signal: ctl.signal, cache: "no-store" });
      if (!resp.ok || !resp.body) throw new Error("HTTP " + resp.status);
      const reader = resp.body.getReader();
      const dec = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done: end } = await reader.read();
        if (end) break;
        buf += dec.decode(value, { stream: true });
        // server-sent events: blocks of `field: value` lines ended by a blank line
        let m;
        while ((m = /\r\n\r\n|\n\n|\r\r/.exec(buf))) {
          const block = buf.slice(0, m.index);
          buf = buf.slice(m.index + m[0].length);
          let type = "message";
          const data = [];
          for (const line of block.split(/\r\n|\n|\r/)) {
            if (!line || line.startsWith(":")) continue; // comments keep the connection alive
            const i = line.indexOf(":");
            const field = i < 0 ? line : line.slice(0, i);
            let val = i < 0 ? "" : line.slice(i + 1);
            if (val.startsWith(" ")) val = val.slice(1);
            if (field === "event") type = val;
            else if (field === "data") data.push(val);
          }
          if (data.length) dispatch(type, data.join("\n"));
          if (done) return;
        }
      }
      if (!done) on("error", null);
    } catch (_) {
      if (!done && !ctl.signal.aborted) on("error", null);
    }
  })();
  return src;
}

// ---- DAGs ----------------------------------------------------------------------------------

// Airflow's API path of a DAG (pause, trigger, marks, source).
function dagApi(id) { return "/api/v2/dags/" + encodeURIComponent(id); }

// Airflow's "recent runs": the newest runs' states as coloured squares, oldest first.
function runSquares(d) {
  if (d.recentRuns === null || d.recentRuns === undefined) return h("span", { class: "muted" }, "–");
  if (!d.recentRuns.length) return h("span", { class: "muted" }, "no runs");
  return h("span", { class: "runs", role: "list" }, d.recentRuns.map((run) =>
    h("a", { class: "run-sq " + run.state, role: "listitem", href: "#/dag/" + encodeURIComponent(d.dagId),
      title: run.runId + ": " + run.state + " (logical date " + fmtTime(run.logicalDate) + ")",
      "data-run": run.runId }, h("span", { class: "sr-only" }, run.state))));
}

function nextRunCell(d) {
  if (!d.nextRun) return h("span", { class: "muted" }, "None");
  const [start, end] = d.nextRun.dataInterval || [];
  return h("span", { class: "next-run", title: "data interval " + fmtTime(start) + " – " + fmtTime(end) + "; created after " + fmtTime(d.nextRun.runAfter) },
    fmtTime(d.nextRun.logicalDate));
}

// The pause switch of a DAG (Airflow's toggle: on = active, the scheduler runs it). Toggling
// PATCHes Airflow's `is_paused`; `onChange(error, paused)` hears how it went.
function pauseSwitch(dagId, paused, onChange) {
  const text = h("span", { class: "switch-text" });
  const btn = h("button", { type: "button", role: "switch", class: "switch", "data-dag": dagId,
    "aria-label": dagId + " active (unpaused)" }, h("span", { class: "knob", "aria-hidden": "true" }), text);
  const set = (p) => {
    paused = p;
    btn.setAttribute("aria-checked", String(!p));
    btn.dataset.paused = String(p);
    btn.title = p ? "Paused: select to unpause" : "Active: select to pause";
    text.textContent = p ? "Paused" : "Active";
  };
  set(!!paused);
  btn.addEventListener("click", async () => {
    btn.disabled = true;
    try {
      const r = await send("PATCH", dagApi(dagId), { is_paused: !paused });
      set(!!r.is_paused);
      if (onChange) onChange(null, !!r.is_paused);
    } catch (e) {
      if (onChange) onChange(e);
    } finally {
      btn.disabled = false;
      btn.focus();
    }
  });
  return btn;
}

async function viewDags(seq) {
  const t0 = performance.now();
  const out = h("div", {}, h("h1", {}, "DAGs"));
  const box = h("section", { class: "card", "aria-label": "DAGs" }, h("p", { class: "muted" }, "Loading…"));
  out.append(box);
  show(out, seq);
  let r;
  try { r = await rest("/v1/dags?runs=10"); } catch (e) { box.replaceChildren(errorBox(e)); return; }
  if (seq !== renderSeq) return;
  renderDagLanding(box, r);
  perf("dags", t0, (r.dags || []).length);
  keepFresh(seq, box, async () => {
    const fresh = await rest("/v1/dags?runs=10");
    if (seq === renderSeq) renderDagLanding(box, fresh);
  });
}

// The DAG folder's import errors: a count, then each file with its line, reason and (Python
// files) traceback. Every text goes in as text: a file's error may quote anything.
function importErrorsBanner(r, open) {
  const list = r.importErrors || [];
  const broken = (r.dags || []).filter((d) => d.importError).length;
  if (!list.length) {
    if (!broken) return null;
    return h("div", { class: "banner import-errors", role: "status", id: "import-errors-hidden" },
      broken + " DAG" + (broken === 1 ? "" : "s") + " failed to load; reading why needs dags:ListImportErrors on weft:dags.");
  }
  return h("section", { class: "banner import-errors", "aria-label": "Import errors" },
    h("details", { id: "import-errors", open: open || null },
      h("summary", {}, h("strong", { id: "import-error-count" }, String(list.length)),
        " DAG import error" + (list.length === 1 ? "" : "s") + " — select to read them"),
      h("ul", { class: "import-error-list" }, list.map((e) => h("li", { "data-file": e.file },
        h("div", {}, h("code", { class: "ie-file" }, e.file + (e.line ? ":" + e.line : "")),
          e.dagId ? [" · DAG ", h("code", {}, e.dagId)] : null),
        h("div", { class: "ie-reason" }, (e.path ? e.path + ": " : "") + e.reason),
        e.traceback ? h("details", { class: "traceback", open: true }, h("summary", {}, "Traceback"),
          h("pre", { class: "ie-trace" }, e.traceback)) : null)))));
}

function renderDagLanding(box, r) {
  const wasOpen = !!(box.querySelector("#import-errors") || {}).open;
  const msg = h("div", { role: "status", id: "dags-msg" });
  const toggled = (id) => (e, paused) => {
    if (e) msg.replaceChildren(errorBox(e));
    else msg.textContent = (paused ? "Paused " : "Unpaused ") + id + ".";
  };
  const rows = (r.dags || []).map((d) => h("tr", { "data-dag": d.dagId, class: d.importError ? "broken" : null },
    h("td", { class: "paused" }, typeof d.isPaused === "boolean" ? pauseSwitch(d.dagId, d.isPaused, toggled(d.dagId)) : ""),
    h("th", { scope: "row" }, h("a", { href: "#/dag/" + encodeURIComponent(d.dagId) }, d.dagId),
      d.importError ? h("span", { class: "import-error", title: (d.importErrors || []).join("\n") || "its file failed to load" }, " ⚠ failed to load") : ""),
    h("td", { class: "owners" }, (d.owners || []).join(", ")),
    h("td", { class: "recent-runs" }, runSquares(d)),
    h("td", {}, d.schedule === null || d.schedule === undefined ? h("span", { class: "muted" }, "None") : h("code", {}, d.schedule)),
    h("td", { class: "next" }, nextRunCell(d)),
    h("td", {}, (d.tags || []).map((t) => h("span", { class: "tag" }, t))),
    h("td", {}, d.description || "")));
  box.replaceChildren(
    importErrorsBanner(r, wasOpen) || "",
    h("p", { class: "muted" }, r.folder ? ["From ", h("code", {}, r.folder), ". "] : "",
      "Active: the scheduler creates the DAG's scheduled runs and runs its queued ones (a paused DAG's runs wait). Recent runs: the newest 10, oldest first. Next run: the data interval (logical date) the scheduler creates next after the latest scheduled run."),
    msg,
    rows.length
      ? h("div", { class: "scroll" }, h("table", { class: "dag-landing" },
        h("thead", {}, h("tr", {}, ["Active", "DAG", "Owner", "Recent runs", "Schedule", "Next run", "Tags", "Description"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, rows)))
      : h("p", {}, "No DAG files in this folder."),
    h("div", { class: "legend" }, ["success", "failed", "running", "queued"].map((st) => h("span", { class: "run-legend " + st }, st))));
}

// ---- DAG graph with task groups ----

// A task's groups, outermost first (`a`, `a.b` for task `a.b.t`).
function groupChain(groupId, groups) {
  const chain = [];
  for (let g = groupId; g && groups.has(g) && chain.length < 64; g = groups.get(g).parent) chain.unshift(g);
  return chain;
}

// The worst of some task-instance states (a collapsed group shows its members' worst).
const STATE_RANK = ["failed", "upstream_failed", "up_for_retry", "up_for_reschedule", "running", "restarting",
  "deferred", "queued", "scheduled", "none", "success", "skipped", "removed"];
function worstState(states) {
  let best = null, rank = Infinity;
  for (const st of states) {
    const i = STATE_RANK.indexOf(st);
    const r = i < 0 ? STATE_RANK.indexOf("none") : i;
    if (r < rank) { rank = r; best = st; }
  }
  return best;
}

// Lays out one level (the DAG, or an expanded group) left to right: column = longest path
// from a root among the level's children; children stacked in a column, centred.
function layoutLevel(children, edges, size) {
  const idx = new Map(children.map((c, i) => [c, i]));
  const indeg = children.map(() => 0);
  const down = children.map(() => []);
  for (const [a, b] of edges) { indeg[idx.get(b)]++; down[idx.get(a)].push(idx.get(b)); }
  const level = children.map(() => 0);
  const queue = [];
  indeg.forEach((n, i) => { if (n === 0) queue.push(i); });
  const placed = new Array(children.length).fill(false);
  for (let q = 0; q < queue.length; q++) {
    const i = queue[q];
    placed[i] = true;
    for (const j of down[i]) {
      level[j] = Math.max(level[j], level[i] + 1);
      if (--indeg[j] === 0) queue.push(j);
    }
  }
  // groups can make cycles between children (a -> g.x, g.y -> a): those go last
  let maxLevel = Math.max(0, ...level);
  children.forEach((_, i) => { if (!placed[i]) level[i] = ++maxLevel; });
  const cols = [];
  children.forEach((c, i) => (cols[level[i]] = cols[level[i]] || []).push(c));
  const colList = cols.filter(Boolean);
  const CX = 56, RY = 10;
  const colW = colList.map((col) => Math.max(...col.map((c) => size(c).w)));
  const colH = colList.map((col) => col.reduce((a, c) => a + size(c).h, 0) + RY * (col.length - 1));
  const height = Math.max(0, ...colH);
  const pos = new Map();
  let x = 0;
  colList.forEach((col, ci) => {
    let y = (height - colH[ci]) / 2;
    for (const c of col) { pos.set(c, { x, y }); y += size(c).h + RY; }
    x += colW[ci] + CX;
  });
  return { pos, w: Math.max(0, x - CX), h: height, levels: colList.length };
}

const TW = 170, TH = 34, GPAD = 10, GHEAD = 22;

// Renders the DAG as an SVG, upstream to the left. Task groups (`groups`: {groupId, parent,
// tooltip}) are one node while collapsed (edges to and from their tasks aggregated) and a box
// around their children once expanded (ids in `expanded`); `onToggle(groupId)` hears a click
// on either. `status` maps task ids (and `id[i]` of mapped instances) to Airflow states.
function renderDagGraph(tasks, status, groupList, expanded, onToggle) {
  const groups = new Map((groupList || []).map((g) => [g.groupId, g]));
  expanded = expanded || new Set();
  const byId = new Map(tasks.map((t) => [t.taskId, t]));
  // a task's path of visible units, outermost first: expanded groups, then the collapsed
  // group that hides it or the task itself
  const unitPath = new Map();
  const members = new Map(); // collapsed group -> its tasks
  for (const t of tasks) {
    const path = [];
    let hidden = null;
    for (const g of groupChain(t.taskGroup, groups)) {
      path.push("g:" + g);
      if (!expanded.has(g)) { hidden = g; break; }
    }
    if (hidden) (members.get(hidden) || members.set(hidden, []).get(hidden)).push(t.taskId);
    else path.push("t:" + t.taskId);
    unitPath.set(t.taskId, path);
  }
  // children of every level ("" = the DAG), in task order
  const kids = new Map([["", []]]);
  const seen = new Set();
  for (const path of unitPath.values()) {
    path.forEach((u, i) => {
      if (seen.has(u)) return;
      seen.add(u);
      const parent = i ? path[i - 1] : "";
      (kids.get(parent) || kids.set(parent, []).get(parent)).push(u);
    });
  }
  // edges per level between the children that hold their ends, and between drawn nodes
  const levelEdges = new Map();
  const drawn = new Map();
  for (const t of tasks) {
    const pb = unitPath.get(t.taskId);
    for (const u of t.upstream) {
      const pa = unitPath.get(u);
      if (!pa) continue;
      let k = 0;
      while (k < pa.length && k < pb.length && pa[k] === pb[k]) k++;
      if (k === pa.length || k === pb.length) continue; // inside one collapsed group
      const lvl = k ? pa[k - 1] : "";
      const key = pa[k] + "\n" + pb[k];
      const m = levelEdges.get(lvl) || levelEdges.set(lvl, new Map()).get(lvl);
      m.set(key, [pa[k], pb[k]]);
      const from = pa[pa.length - 1], to = pb[pb.length - 1];
      drawn.set(from + "\n" + to, [from, to]);
    }
  }
  // sizes and positions, inner levels first
  const sizes = new Map();
  const layouts = new Map();
  const sizeOf = (u) => {
    if (sizes.has(u)) return sizes.get(u);
    let sz = { w: TW, h: TH };
    if (u.startsWith("g:") && expanded.has(u.slice(2)) && kids.has(u)) {
      const lay = layoutLevel(kids.get(u), [...(levelEdges.get(u) || new Map()).values()], sizeOf);
      layouts.set(u, lay);
      sz = { w: Math.max(TW, lay.w + 2 * GPAD), h: lay.h + GHEAD + 2 * GPAD };
    }
    sizes.set(u, sz);
    return sz;
  };
  const top = layoutLevel(kids.get(""), [...(levelEdges.get("") || new Map()).values()], sizeOf);
  const abs = new Map();
  const place = (lay, ox, oy) => {
    for (const [u, p] of lay.pos) {
      abs.set(u, { x: ox + p.x, y: oy + p.y });
      if (layouts.has(u)) place(layouts.get(u), ox + p.x + GPAD, oy + p.y + GHEAD + GPAD);
    }
  };
  const PAD = 16;
  place(top, PAD, PAD);
  const width = top.w + PAD * 2, height = Math.max(TH, top.h) + PAD * 2;
  const nGroups = members.size;
  const svg = s("svg", { class: "graph dag", width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": "DAG graph, upstream to the left: " + tasks.length + " tasks in " + top.levels + " levels" +
      (nGroups ? ", " + nGroups + " task group" + (nGroups === 1 ? "" : "s") + " collapsed" : "") });
  // mapped instances (`id[i]`) by task
  const mapped = new Map();
  for (const [k, st] of Object.entries(status || {})) {
    const m = k.match(/^(.*)\[\d+\]$/);
    if (m) (mapped.get(m[1]) || mapped.set(m[1], []).get(m[1])).push(st);
  }
  const stateOf = (id) => {
    if (!status) return null;
    if (status[id]) return status[id];
    return mapped.has(id) ? worstState(mapped.get(id)) : null;
  };
  const shortName = (g) => g.split(".").pop();
  // expanded groups: boxes, outer ones first (inner boxes are drawn over them)
  const boxes = s("g", {});
  const depth = (u) => groupChain(u.slice(2), groups).length;
  for (const u of [...layouts.keys()].sort((a, b) => depth(a) - depth(b))) {
    const p = abs.get(u), sz = sizes.get(u), gid = u.slice(2), name = shortName(gid);
    const tip = (groups.get(gid) || {}).tooltip;
    boxes.append(s("g", { class: "group-box", "data-group": gid, transform: `translate(${p.x},${p.y})` },
      s("title", {}, "Task group " + gid + (tip ? ": " + tip : "") + " (expanded; select its name to collapse)"),
      s("rect", { width: sz.w, height: sz.h, rx: 6 }),
      s("text", { class: "group-label", x: 8, y: 15 }, "▾ " + (name.length > 30 ? name.slice(0, 29) + "…" : name))));
  }
  svg.append(boxes);
  let d = "";
  for (const [from, to] of drawn.values()) {
    const a = abs.get(from), b = abs.get(to);
    if (!a || !b) continue;
    const x1 = a.x + TW, y1 = a.y + TH / 2, x2 = b.x, y2 = b.y + TH / 2, mx = (x1 + x2) / 2;
    d += `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2} `;
  }
  svg.append(s("path", { class: "edge", d }));
  const g = s("g", {});
  for (const [u, p] of abs) {
    if (layouts.has(u)) continue;
    if (u.startsWith("g:")) {
      const gid = u.slice(2), ids = members.get(gid) || [];
      const st = status ? worstState(ids.map((id) => stateOf(id) || "none")) : null;
      const tip = (groups.get(gid) || {}).tooltip;
      g.append(s("g", { class: "node group" + (st ? " st-" + st : ""), "data-group": gid, transform: `translate(${p.x},${p.y})` },
        s("title", {}, "Task group " + gid + (tip ? ": " + tip : "") + ", " + ids.length + " tasks" + (st ? ": " + st : "") + " (select to expand)"),
        s("rect", { width: TW, height: TH, rx: 8 }),
        s("text", { x: 8, y: 14 }, "▸ " + (shortName(gid).length > 22 ? shortName(gid).slice(0, 21) + "…" : shortName(gid))),
        s("text", { class: "type", x: 8, y: 28 }, "group · " + ids.length + " task" + (ids.length === 1 ? "" : "s") + (st ? " · " + st : ""))));
      continue;
    }
    const id = u.slice(2), t = byId.get(id);
    const st = stateOf(id);
    const label = t.taskGroup && id.startsWith(t.taskGroup + ".") ? id.slice(t.taskGroup.length + 1) : id;
    g.append(s("g", { class: "node task" + (st ? " st-" + st : ""), "data-task": id, transform: `translate(${p.x},${p.y})` },
      s("title", {}, id + " (" + t.operator + ", trigger " + t.triggerRule + ")" + (st ? ": " + st : "")),
      s("rect", { width: TW, height: TH, rx: 4 }),
      s("text", { x: 8, y: 14 }, label.length > 24 ? label.slice(0, 23) + "…" : label),
      s("text", { class: "type", x: 8, y: 28 }, t.operator.slice(0, 26) + (t.mapped ? " · mapped" : "") + (st ? " · " + st : ""))));
  }
  svg.append(g);
  if (onToggle) {
    svg.addEventListener("click", (ev) => {
      const node = ev.target.closest("g.node.group, g.group-box text.group-label");
      if (!node) return;
      onToggle((node.closest("[data-group]")).getAttribute("data-group"));
    });
  }
  return svg;
}

// Buttons that expand and collapse the task groups (the keyboard's way to the graph's boxes).
function groupControls(groupList, expanded, onToggle, onAll) {
  const groups = new Map(groupList.map((g) => [g.groupId, g]));
  const visible = groupList.filter((g) => groupChain(g.parent, groups).every((p) => expanded.has(p)));
  return h("div", { class: "row group-controls", role: "group", "aria-label": "Task groups" },
    h("span", { class: "muted" }, "Task groups:"),
    visible.map((g) => h("button", { type: "button", class: "secondary group-btn", "data-group": g.groupId,
      "aria-expanded": String(expanded.has(g.groupId)), title: g.tooltip || null, onclick: () => onToggle(g.groupId) },
      (expanded.has(g.groupId) ? "▾ " : "▸ ") + g.groupId)),
    h("button", { type: "button", class: "secondary", id: "groups-expand", onclick: () => onAll(true) }, "Expand all"),
    h("button", { type: "button", class: "secondary", id: "groups-collapse", onclick: () => onAll(false) }, "Collapse all"));
}

// The grid view: runs (columns, oldest left) x tasks (rows), each cell coloured by the task
// instance's state. Fed by `GET /v1/dags/{id}/runs` -> {"runs": [{"runId", "logicalDate",
// "state", "tasks": {"TASK_ID": {"state", "tryNumber"}}}]}, the runs the scheduler recorded.
// A run's header selects the run (its Gantt chart, marks); a cell opens its task instance.
function renderGrid(taskIds, runs, onOpen, selected, onSelect) {
  const table = h("table", { class: "grid" },
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Task"),
      runs.map((r) => h("th", { scope: "col", title: r.runId },
        h("button", { type: "button", class: "run-btn" + (r.runId === selected ? " selected" : ""), "data-run": r.runId,
          "aria-pressed": String(r.runId === selected), "aria-label": "Run " + r.runId + ": " + r.state,
          onclick: () => onSelect(r.runId) },
          h("span", { class: "badge " + String(r.state).toUpperCase() }, fmtTime(r.logicalDate))))))),
    h("tbody", {}, taskIds.map((id) => h("tr", {}, h("th", { scope: "row" }, id),
      runs.map((r) => {
        const ti = (r.tasks || {})[id];
        const st = ti ? ti.state : "none";
        const label = id + " in " + r.runId + ": " + st + (ti && ti.tryNumber ? ", try " + ti.tryNumber : "");
        const finished = r.state === "success" || r.state === "failed";
        // a cell opens the task instance: its tries' logs, marks, and Clear once the run has finished
        const inner = ti && onOpen
          ? h("button", { type: "button", class: "cell-btn", title: label, "aria-label": label,
              "data-task": id, "data-run": r.runId, onclick: () => onOpen(r.runId, id, ti, finished) }, h("span", { class: "sr-only" }, st))
          : h("span", { class: "sr-only" }, st);
        return h("td", { class: "cell " + st + (r.runId === selected ? " selected" : ""), title: label }, inner);
      })))));
  return h("div", { class: "scroll" }, table);
}

// ---- Gantt chart of a DAG run ----

const DAG_GANTT_MAX = 500;

// Rows of a run's Gantt chart: per task instance, a bar per try (`tries` stamped by the
// server's runner; the running or unstamped latest try from the instance's own start/end).
function ganttRows(g, now) {
  const rows = [];
  for (const t of g.taskInstances || []) {
    const label = t.taskId + (t.mapIndex >= 0 ? "[" + t.mapIndex + "]" : "");
    const bars = (t.tries || []).map((tr) => ({ start: tr.start, end: tr.end, tryNumber: tr.tryNumber,
      state: tr.tryNumber === t.tryNumber && !["running", "queued", "scheduled"].includes(t.state) ? t.state : (tr.outcome || "failed") }));
    if (t.start !== null && t.start !== undefined && !bars.some((b) => b.tryNumber === t.tryNumber)) {
      const end = t.end !== null && t.end !== undefined ? t.end : (t.state === "running" ? now : t.start);
      bars.push({ start: t.start, end: Math.max(end, t.start), tryNumber: t.tryNumber, state: t.state });
    }
    rows.push({ label, taskId: t.taskId, state: t.state, bars });
  }
  const first = (r) => (r.bars.length ? Math.min(...r.bars.map((b) => b.start)) : Infinity);
  rows.sort((a, b) => first(a) - first(b) || a.label.localeCompare(b.label));
  return rows;
}

function clock(secs) { return new Date(secs * 1000).toLocaleTimeString(); }

// The Gantt chart of one run (`GET /v1/dags/{id}/runs/{run}/gantt`): each task instance's
// tries as bars on a time axis from the run's start, coloured by state.
function renderDagGantt(g) {
  const now = Date.now() / 1000;
  const rows = ganttRows(g, now).slice(0, DAG_GANTT_MAX);
  const runStart = g.startDate ? toMs(g.startDate) / 1000 : null;
  const runEnd = g.endDate ? toMs(g.endDate) / 1000 : null;
  const queued = g.queuedAt ? toMs(g.queuedAt) / 1000 : null;
  const summary = h("p", { class: "muted", id: "gantt-run" },
    queued ? "Queued " + fmtTime(queued) + " · " : "",
    runStart ? "started " + fmtTime(runStart) + (queued && runStart >= queued ? " (waited " + fmtDur((runStart - queued) * 1000) + ")" : "") : "not started",
    runEnd ? " · ended " + fmtTime(runEnd) + (runStart ? " (took " + fmtDur((runEnd - runStart) * 1000) + ")" : "") : "");
  const bars = rows.flatMap((r) => r.bars);
  if (!bars.length) return h("div", {}, summary, h("p", { class: "muted", id: "gantt-empty" }, "No task instance has started in this run."));
  let t0 = Math.min(...bars.map((b) => b.start));
  if (runStart !== null && runStart < t0) t0 = runStart;
  let t1 = Math.max(...bars.map((b) => b.end));
  if (runEnd !== null && runEnd > t1) t1 = runEnd;
  if (g.state === "running" || g.state === "queued") t1 = Math.max(t1, now);
  const span = Math.max(0.001, t1 - t0);
  const LW = 210, BW = 640, RW = 80, RH = 22, TOP = 24;
  const width = LW + BW + RW, height = TOP + rows.length * RH + 4;
  const svg = s("svg", { class: "gantt dag-gantt", width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": "Gantt chart of run " + g.runId + ": " + rows.length + " task instances, " + bars.length + " tries over " + fmtDur(span * 1000) });
  for (let i = 0; i <= 4; i++) {
    const x = LW + (BW * i) / 4;
    svg.append(s("line", { class: "axis", x1: x, x2: x, y1: 14, y2: height }));
    svg.append(s("text", { x: Math.max(0, x - 10), y: 11 }, "+" + fmtDur((span * 1000 * i) / 4)));
  }
  rows.forEach((r, i) => {
    const y = TOP + i * RH;
    const row = s("g", { class: "gantt-row", "data-task": r.label },
      s("title", {}, r.label + ": " + r.state + (r.bars.length ? "" : ", not started") + r.bars.map((b) =>
        "\ntry " + b.tryNumber + ": " + b.state + ", " + fmtDur((b.end - b.start) * 1000) + " (" + clock(b.start) + " – " + clock(b.end) + ")").join("")),
      s("text", { x: 4, y: y + 13 }, r.label.length > 30 ? r.label.slice(0, 29) + "…" : r.label));
    for (const b of r.bars) {
      const x = LW + ((b.start - t0) / span) * BW;
      row.append(s("rect", { class: "bar st-" + b.state, "data-try": b.tryNumber, x, y: y + 3,
        width: Math.max(2, ((b.end - b.start) / span) * BW), height: RH - 8, rx: 2 }));
    }
    const last = r.bars[r.bars.length - 1];
    const endX = last ? LW + ((last.end - t0) / span) * BW : LW;
    row.append(s("text", { class: "gantt-dur", x: Math.min(endX + 4, LW + BW + 4), y: y + 13 },
      last ? fmtDur((last.end - last.start) * 1000) + (r.bars.length > 1 ? " · " + r.bars.length + " tries" : "") : "–"));
    svg.append(row);
  });
  const wrap = h("div", {}, summary, h("div", { class: "scroll" }, svg), stateLegend());
  if ((g.taskInstances || []).length > DAG_GANTT_MAX) wrap.append(h("p", { class: "muted" }, "Showing the first " + DAG_GANTT_MAX + " of " + g.taskInstances.length + " task instances."));
  return wrap;
}

function stateLegend() {
  return h("div", { class: "legend dag-legend", "aria-hidden": "true" },
    ["success", "failed", "running", "queued", "up_for_retry", "upstream_failed", "skipped"].map((st) => h("span", { class: "st-" + st }, st)));
}

// ---- trigger form ----

// Keys of an Airflow `Param` written as a mapping (the loader's own list).
const PARAM_KEYS = ["value", "default", "type", "description", "title", "enum", "minimum", "maximum"];

// A param of the DAG file as a form field's spec: {name, value, type, nullable, description,
// title, enum, minimum, maximum}. A plain value's type is its JSON type.
function paramSpec(name, raw) {
  const isParam = raw !== null && typeof raw === "object" && !Array.isArray(raw) &&
    ("value" in raw || "default" in raw) && Object.keys(raw).every((k) => PARAM_KEYS.includes(k));
  const value = isParam ? ("value" in raw ? raw.value : raw.default) : raw;
  const jsonType = (v) => v === null ? "null" : Array.isArray(v) ? "array" : typeof v === "number" ? (Number.isInteger(v) ? "integer" : "number") : typeof v === "object" ? "object" : typeof v;
  let types = isParam && raw.type !== undefined ? [].concat(raw.type) : [jsonType(value)];
  types = types.filter((t) => typeof t === "string");
  const nullable = types.includes("null") || (!isParam && value === null);
  const type = types.find((t) => t !== "null") || (value === null ? "string" : jsonType(value));
  return { name, value, type, nullable, isParam,
    description: isParam && raw.description !== undefined ? String(raw.description) : null,
    title: isParam && raw.title !== undefined ? String(raw.title) : null,
    enum: isParam && Array.isArray(raw.enum) ? raw.enum : null,
    minimum: isParam && typeof raw.minimum === "number" ? raw.minimum : null,
    maximum: isParam && typeof raw.maximum === "number" ? raw.maximum : null };
}

// Why `v` does not fit param `p` (null when it does).
function paramProblem(p, v) {
  if (v === null || v === undefined) return p.nullable || (!p.isParam && p.value === null) ? null : "a value is required";
  if (p.enum) return p.enum.some((e) => JSON.stringify(e) === JSON.stringify(v)) ? null : "must be one of " + p.enum.map((e) => JSON.stringify(e)).join(", ");
  const ok = {
    string: () => typeof v === "string",
    integer: () => Number.isInteger(v),
    number: () => typeof v === "number" && isFinite(v),
    boolean: () => typeof v === "boolean",
    array: () => Array.isArray(v),
    object: () => v !== null && typeof v === "object" && !Array.isArray(v),
  }[p.type];
  if (ok && !ok()) return "must be " + (p.type === "integer" || p.type === "array" || p.type === "object" ? "an " : "a ") + p.type;
  if (typeof v === "number") {
    if (p.minimum !== null && v < p.minimum) return "must be at least " + p.minimum;
    if (p.maximum !== null && v > p.maximum) return "must be at most " + p.maximum;
  }
  return null;
}

// One param's form field: {el, input, get() -> {value} | {error}, set(value)}.
function paramField(p, i, onInput) {
  const id = "param-" + i;
  const help = p.description ? h("span", { class: "muted param-help", id: id + "-help" }, p.description) : null;
  const label = h("label", { for: id }, h("span", { class: "param-name" }, p.title || p.name),
    p.title ? h("code", { class: "muted" }, " " + p.name) : "", h("span", { class: "muted" }, " (" + (p.enum ? "one of" : p.type) + (p.nullable ? ", optional" : "") + ")"));
  const common = { id, "data-param": p.name, "aria-describedby": help ? id + "-help" : null, oninput: onInput };
  let input, get, set;
  if (p.enum) {
    input = h("select", common, p.nullable ? h("option", { value: "" }, "(none)") : null,
      p.enum.map((e, k) => h("option", { value: String(k) }, typeof e === "string" ? e : JSON.stringify(e))));
    get = () => ({ value: input.value === "" ? null : p.enum[Number(input.value)] });
    set = (v) => {
      const k = p.enum.findIndex((e) => JSON.stringify(e) === JSON.stringify(v));
      input.value = k >= 0 ? String(k) : "";
    };
  } else if (p.type === "boolean") {
    input = h("input", { ...common, type: "checkbox" });
    get = () => ({ value: input.checked });
    set = (v) => { input.checked = v === true; };
  } else if (p.type === "integer" || p.type === "number") {
    input = h("input", { ...common, type: "number", step: p.type === "integer" ? "1" : "any",
      min: p.minimum !== null ? String(p.minimum) : null, max: p.maximum !== null ? String(p.maximum) : null });
    get = () => {
      if (input.value.trim() === "") return { value: null };
      const n = Number(input.value);
      return isNaN(n) ? { error: "not a number" } : { value: n };
    };
    set = (v) => { input.value = typeof v === "number" ? String(v) : ""; };
  } else if (p.type === "string") {
    input = h("input", { ...common, type: "text" });
    get = () => ({ value: input.value === "" && p.nullable ? null : input.value });
    set = (v) => { input.value = v === null || v === undefined ? "" : typeof v === "string" ? v : JSON.stringify(v); };
  } else {
    input = h("textarea", { ...common, class: "short", spellcheck: "false" });
    get = () => {
      if (input.value.trim() === "") return { value: null };
      try { return { value: JSON.parse(input.value) }; } catch (e) { return { error: "not valid JSON: " + e.message }; }
    };
    set = (v) => { input.value = v === undefined ? "" : JSON.stringify(v, null, 2); };
  }
  set(p.value);
  const err = h("span", { class: "error field-error", id: id + "-err", role: "alert" });
  const el = h("div", { class: "field param" + (p.type === "boolean" && !p.enum ? " check" : "") }, label, input, help, err);
  return { p, el, input, err, get, set };
}

// The trigger form: a field per param of the DAG file, the run's conf as JSON (kept in step
// with the fields both ways), an optional logical date and run id. Checked before it is sent;
// the server's refusal (a bad date, a taken run id, no permission) is shown as it answered.
function triggerForm(d, onTriggered, onCancel) {
  const specs = Object.entries(d.params || {}).map(([k, v]) => paramSpec(k, v));
  const msg = h("div", { id: "trigger-msg", role: "status" });
  const conf = h("textarea", { id: "trigger-conf", spellcheck: "false", "aria-describedby": "trigger-conf-help" });
  const date = h("input", { id: "trigger-date", type: "text", placeholder: "e.g. 2024-01-01T00:00:00Z", "aria-describedby": "trigger-date-help" });
  const runId = h("input", { id: "trigger-run-id", type: "text", placeholder: "generated when empty" });
  let fields = [];
  const confValue = () => { try { const v = JSON.parse(conf.value); return v && typeof v === "object" && !Array.isArray(v) ? v : null; } catch (_) { return null; } };
  const fromFields = () => {
    // conf being edited into something that is not a JSON object yet is left as it is
    if (conf.value.trim() !== "" && !confValue()) return;
    const base = confValue() || {};
    for (const f of fields) {
      const r = f.get();
      if (!("error" in r)) base[f.p.name] = r.value;
    }
    conf.value = JSON.stringify(base, null, 2);
    conf.removeAttribute("aria-invalid");
  };
  fields = specs.map((p, i) => paramField(p, i, fromFields));
  conf.value = JSON.stringify(Object.fromEntries(specs.map((p) => [p.name, p.value])), null, 2);
  conf.addEventListener("input", () => {
    const v = confValue();
    if (!v) return;
    for (const f of fields) if (f.p.name in v && f.input !== document.activeElement) f.set(v[f.p.name]);
  });
  const submit = h("button", { type: "submit", id: "trigger-submit" }, "Trigger");
  const problem = (el, text) => {
    el.setAttribute("aria-invalid", "true");
    return text;
  };
  const form = h("form", { id: "trigger-form", class: "trigger-form", "aria-labelledby": "trigger-h", novalidate: true },
    h("h2", { id: "trigger-h" }, "Trigger a run of " + d.dagId),
    specs.length ? h("fieldset", { class: "params" }, h("legend", {}, "Params"), fields.map((f) => f.el))
      : h("p", { class: "muted" }, "This DAG declares no params; its conf is free JSON."),
    h("div", { class: "field" }, h("label", { for: "trigger-conf" }, "Run configuration (conf, JSON)"), conf,
      h("span", { class: "muted", id: "trigger-conf-help" }, "What the run reads as dag_run.conf and its params; the fields above fill it in, and editing it fills them.")),
    h("div", { class: "row" },
      h("div", { class: "field" }, h("label", { for: "trigger-date" }, "Logical date (optional)"), date,
        h("span", { class: "muted", id: "trigger-date-help" }, "ISO 8601; now when empty")),
      h("div", { class: "field" }, h("label", { for: "trigger-run-id" }, "Run id (optional)"), runId)),
    h("div", { class: "row" }, submit, h("button", { type: "button", class: "secondary", id: "trigger-cancel", onclick: onCancel }, "Cancel")),
    msg);
  // a field being corrected is no longer marked
  form.addEventListener("input", (ev) => {
    ev.target.removeAttribute("aria-invalid");
    const f = fields.find((x) => x.input === ev.target);
    if (f) f.err.textContent = "";
  });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
    for (const f of fields) f.err.textContent = "";
    const problems = [];
    let focus = null;
    let value = null;
    try { value = JSON.parse(conf.value.trim() === "" ? "{}" : conf.value); } catch (e) {
      problems.push(problem(conf, "The run configuration is not valid JSON: " + e.message));
      focus = focus || conf;
    }
    if (value !== null && (typeof value !== "object" || Array.isArray(value))) {
      problems.push(problem(conf, "The run configuration must be a JSON object ({...})."));
      focus = focus || conf;
      value = null;
    }
    for (const f of fields) {
      const r = f.get();
      // a param left out of the conf takes its default, as in Airflow
      const why = "error" in r ? r.error : value && f.p.name in value ? paramProblem(f.p, value[f.p.name]) : null;
      if (why) {
        f.err.textContent = why;
        problems.push(problem(f.input, (f.p.title || f.p.name) + ": " + why));
        focus = focus || f.input;
      }
    }
    if (date.value.trim() && isNaN(Date.parse(date.value.trim()))) {
      problems.push(problem(date, "The logical date is not a date: " + date.value.trim()));
      focus = focus || date;
    }
    if (problems.length) {
      msg.replaceChildren(h("div", { class: "error", role: "alert" }, "Not triggered: ", h("ul", {}, problems.map((p) => h("li", {}, p)))));
      if (focus) focus.focus();
      return;
    }
    const body = { conf: value };
    if (date.value.trim()) body.logical_date = date.value.trim();
    if (runId.value.trim()) body.dag_run_id = runId.value.trim();
    submit.disabled = true;
    msg.textContent = "Triggering…";
    try {
      const run = await send("POST", dagApi(d.dagId) + "/dagRuns", body);
      msg.textContent = "";
      onTriggered(run);
    } catch (e) {
      msg.replaceChildren(h("div", {}, "Not triggered: "), errorBox(e));
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

// ---- the code view ----

// The DAG file as text with line numbers (`GET /api/v2/dagSources/{id}`): never parsed as
// HTML, whatever it holds.
function renderCode(text) {
  const lines = text.replace(/\n$/, "").split("\n");
  return h("div", { class: "code-view" },
    h("pre", { class: "gutter", "aria-hidden": "true" }, lines.map((_, i) => String(i + 1)).join("\n")),
    h("pre", { class: "code", id: "dag-code", tabindex: "0", "aria-label": "DAG file source" }, text));
}

// ---- a task instance's panel: logs, marks, clear ----

function tiPanel(ctx, runId, task, ti, finished) {
  const { id, base, dagMsg, reload } = ctx;
  const tiPath = dagApi(id) + "/dagRuns/" + encodeURIComponent(runId) + "/taskInstances/" + encodeURIComponent(task);
  const clearBtn = h("button", { type: "button", id: "clear-btn", disabled: !finished,
    title: finished ? "" : "the run has not finished", onclick: async () => {
      if (!confirm("Clear " + task + " (and its downstream) in " + runId + "?")) return;
      try { await rest(base + "/" + encodeURIComponent(runId) + "/clear", { task, downstream: true }); dagMsg.textContent = "Cleared " + task + " in " + runId + "."; reload(); }
      catch (e) { dagMsg.replaceChildren(errorBox(e)); }
    } }, "Clear " + task);
  const opt = (key, text, help) => h("label", { class: "check", title: help },
    h("input", { type: "checkbox", id: "mark-" + key }), " " + text);
  const preview = h("div", { id: "mark-preview", "aria-live": "polite" });
  const flags = () => ({
    include_upstream: document.getElementById("mark-upstream").checked,
    include_downstream: document.getElementById("mark-downstream").checked,
    include_past: document.getElementById("mark-past").checked,
    include_future: document.getElementById("mark-future").checked,
  });
  // Airflow's mark: first the instances it would change (a dry run), then confirm
  const mark = async (state) => {
    const body = { new_state: state, ...flags() };
    preview.replaceChildren(h("p", { class: "muted" }, "Finding the task instances to mark…"));
    let dry;
    try { dry = await send("PATCH", tiPath + "/dry_run", body); } catch (e) { preview.replaceChildren(errorBox(e)); return; }
    const list = dry.task_instances || [];
    if (!list.length) { preview.replaceChildren(h("p", { id: "mark-none" }, "Nothing to mark: every selected task instance is " + state + " already.")); return; }
    const confirmBtn = h("button", { type: "button", id: "mark-confirm", class: state === "failed" ? "danger" : null, onclick: async () => {
      confirmBtn.disabled = true;
      try {
        const r = await send("PATCH", tiPath, body);
        const n = (r.task_instances || []).length;
        dagMsg.textContent = "Marked " + n + " task instance" + (n === 1 ? "" : "s") + " " + state + ".";
        preview.replaceChildren();
        reload();
      } catch (e) { preview.replaceChildren(errorBox(e)); }
    } }, "Mark " + list.length + " " + state);
    preview.replaceChildren(
      h("p", {}, "Marking " + state + " changes " + list.length + " task instance" + (list.length === 1 ? "" : "s") + ":"),
      h("ul", { class: "mark-list" }, list.map((x) => h("li", {}, h("code", {}, x.task_id + (x.map_index >= 0 ? "[" + x.map_index + "]" : "")),
        " in " + x.dag_run_id + (x.state ? " (now " + x.state + ")" : "")))),
      h("div", { class: "row" }, confirmBtn, h("button", { type: "button", class: "secondary", onclick: () => preview.replaceChildren() }, "Cancel")));
    confirmBtn.focus();
  };
  const logs = h("div", { id: "ti-logs" }, h("p", { class: "muted" }, "Loading logs…"));
  const panel = [
    h("h3", {}, task + " in " + runId + " — " + ti.state + ", try " + ti.tryNumber),
    h("div", { class: "row" }, clearBtn),
    h("fieldset", { class: "mark" }, h("legend", {}, "Mark this task instance"),
      h("div", { class: "row" },
        opt("upstream", "Upstream", "also its upstream tasks in this run"),
        opt("downstream", "Downstream", "also its downstream tasks in this run"),
        opt("past", "Past", "also in the runs before this one"),
        opt("future", "Future", "also in the runs after this one")),
      h("div", { class: "row" },
        h("button", { type: "button", id: "mark-success", onclick: () => mark("success") }, "Mark success…"),
        h("button", { type: "button", id: "mark-failed", class: "danger", onclick: () => mark("failed") }, "Mark failed…")),
      preview),
    logs,
  ];
  (async () => {
    try {
      const r = await rest(base + "/" + encodeURIComponent(runId) + "/tasks/" + encodeURIComponent(task) + "/logs");
      logs.replaceChildren(...((r.tries || []).length ? r.tries.map((t) => h("details", { open: true },
        h("summary", {}, "Try " + t.tryNumber + (t.mapIndex >= 0 ? " [" + t.mapIndex + "]" : "")),
        h("pre", {}, t.entries.map((e) => pretty(JSON.stringify(e))).join("\n")))) : [h("p", { class: "muted" }, "No logs for this task instance.")]));
    } catch (e) { logs.replaceChildren(errorBox(e)); }
  })();
  return panel;
}

// ---- the DAG page ----

async function viewDag(id, seq) {
  const title = h("div", { class: "title-row" }, h("h1", {}, id));
  const out = h("div", {}, h("p", {}, h("a", { href: "#/dags" }, "← DAGs")), title);
  show(out, seq);
  let d;
  try { d = await rest("/v1/dags/" + encodeURIComponent(id)); } catch (e) { out.append(errorBox(e)); return; }
  if (seq !== renderSeq) return;
  const t0 = performance.now();
  const base = "/v1/dags/" + encodeURIComponent(id) + "/runs";
  const dagMsg = h("div", { role: "status", id: "dag-msg" });
  const pausedNote = h("span", { class: "muted", id: "paused-note" });
  const notePaused = (p) => { pausedNote.textContent = p ? "Paused: no scheduled runs are created, and triggered runs wait until the DAG is unpaused." : ""; };
  notePaused(d.isPaused);
  let loadRuns = () => {};
  title.append(pauseSwitch(id, d.isPaused, (e, p) => {
    if (e) { dagMsg.replaceChildren(errorBox(e)); return; }
    dagMsg.textContent = (p ? "Paused " : "Unpaused ") + id + ".";
    notePaused(p);
    loadRuns();
  }), pausedNote);
  const trigger = h("button", { type: "button", id: "trigger-btn", "aria-expanded": "false", "aria-controls": "trigger-box" }, "Trigger DAG run…");
  const triggerBox = h("div", { id: "trigger-box" });
  const closeForm = () => { triggerBox.replaceChildren(); trigger.setAttribute("aria-expanded", "false"); trigger.focus(); };
  trigger.addEventListener("click", () => {
    if (triggerBox.firstChild) { closeForm(); return; }
    triggerBox.replaceChildren(triggerForm(d, (run) => {
      closeForm();
      dagMsg.textContent = "Triggered " + run.dag_run_id + ".";
      selected = run.dag_run_id;
      loadRuns();
    }, closeForm));
    trigger.setAttribute("aria-expanded", "true");
    const first = triggerBox.querySelector("input, select, textarea");
    if (first) first.focus();
  });
  const nParams = Object.keys(d.params || {}).length;
  out.append(h("section", { class: "card" },
    h("dl", { class: "kv" },
      h("dt", {}, "File"), h("dd", {}, d.file),
      h("dt", {}, "Schedule"), h("dd", {}, d.schedule === null ? "manual only" : d.schedule),
      h("dt", {}, "Next run"), h("dd", {}, d.nextRun ? fmtTime(d.nextRun.logicalDate) + " (due " + fmtTime(d.nextRun.runAfter) + ")" : "none"),
      h("dt", {}, "Tasks"), h("dd", {}, String(d.tasks) + ((d.taskGroups || []).length ? " in " + d.taskGroups.length + " task group" + (d.taskGroups.length === 1 ? "" : "s") : "")),
      h("dt", {}, "Params"), h("dd", {}, nParams ? Object.keys(d.params).join(", ") : "none"),
      d.description ? [h("dt", {}, "Description"), h("dd", { id: "dag-description" }, d.description)] : null),
    h("div", { class: "row actions" }, trigger, h("span", { class: "muted", id: "trigger-help" },
      "Runs are executed by the server's scheduler. Select a run's date in the grid for its Gantt chart and to mark it; select a cell for the task instance's logs, marks and Clear.")),
    triggerBox,
    dagMsg));
  const gridBox = h("div", {}, h("p", { class: "muted" }, "Loading runs…"));
  const tiBox = h("div", { id: "ti-box", "aria-live": "polite" });
  const runBox = h("div", { id: "run-box" });
  const ganttBox = h("div", { id: "gantt-box" }, h("p", { class: "muted" }, "No run selected."));
  const graphBox = h("div", { class: "scroll dag-scroll" });
  const groupBox = h("div", {});
  const codeBox = h("div", { id: "code-box" }, h("p", { class: "muted" }, "Loading…"));
  const code = h("details", { id: "code-details" }, h("summary", {}, "Show the file ", h("code", {}, d.file)), codeBox);
  out.append(card("Grid (runs × tasks)", "grid-h", gridBox, tiBox));
  out.append(card("Run", "run-h", runBox, ganttBox));
  out.append(card("Graph", "dg-h", groupBox, graphBox, stateLegend()));
  out.append(card("Code", "code-h", code));
  let codeLoaded = false;
  code.addEventListener("toggle", async () => {
    if (!code.open || codeLoaded) return;
    codeLoaded = true;
    try {
      const r = await rest("/api/v2/dagSources/" + encodeURIComponent(id));
      codeBox.replaceChildren(renderCode(String(r.content || "")));
    } catch (e) { codeLoaded = false; codeBox.replaceChildren(errorBox(e)); }
  });

  // graph: task groups collapsed until expanded; coloured by the selected run
  const groups = d.taskGroups || [];
  const expanded = new Set();
  let runStatus = null;
  const drawGraph = () => {
    graphBox.replaceChildren(renderDagGraph(d.taskList || [], runStatus, groups, expanded, toggle));
    groupBox.replaceChildren(groups.length ? groupControls(groups, expanded, toggle, all) : "");
  };
  const toggle = (gid) => {
    if (expanded.has(gid)) {
      expanded.delete(gid);
      for (const g of groups) if (g.groupId.startsWith(gid + ".")) expanded.delete(g.groupId);
    } else expanded.add(gid);
    drawGraph();
    const btn = groupBox.querySelector("button.group-btn[data-group=\"" + CSS.escape(gid) + "\"]");
    if (btn && document.activeElement && document.activeElement.classList.contains("group-btn")) btn.focus();
  };
  const all = (open) => {
    expanded.clear();
    if (open) for (const g of groups) expanded.add(g.groupId);
    drawGraph();
  };
  drawGraph();
  perf("dag", t0, (d.taskList || []).length);

  let selected = null;
  let timer = null;
  let ganttTimer = null;
  const ctx = { id, base, dagMsg, reload: () => loadRuns() };
  const loadGantt = async (run) => {
    clearTimeout(ganttTimer);
    if (seq !== renderSeq) return;
    try {
      const g = await rest(base + "/" + encodeURIComponent(run.runId) + "/gantt");
      if (seq !== renderSeq || selected !== run.runId) return;
      ganttBox.replaceChildren(renderDagGantt(g));
      if (g.state !== "success" && g.state !== "failed") ganttTimer = setTimeout(() => loadGantt(run), 1500);
    } catch (e) { ganttBox.replaceChildren(errorBox(e)); }
  };
  let shown = null;
  const showRun = (run) => {
    // a refresh that changed nothing keeps the page (and the focus) as it is
    const sig = JSON.stringify(run);
    if (sig === shown) return;
    shown = sig;
    const finished = run.state === "success" || run.state === "failed";
    const markRun = async (state) => {
      if (!confirm("Mark run " + run.runId + " " + state + "?" + (finished ? "" : " Its running tries are stopped."))) return;
      try {
        await send("PATCH", dagApi(id) + "/dagRuns/" + encodeURIComponent(run.runId), { state });
        dagMsg.textContent = "Marked run " + run.runId + " " + state + ".";
        loadRuns();
      } catch (e) { dagMsg.replaceChildren(errorBox(e)); }
    };
    runBox.replaceChildren(h("div", { class: "row" },
      h("strong", {}, run.runId), badge(String(run.state).toUpperCase()),
      h("span", { class: "muted" }, run.runType + " · logical date " + fmtTime(run.logicalDate)),
      h("button", { type: "button", id: "run-success", disabled: run.state === "success", onclick: () => markRun("success") }, "Mark run success"),
      h("button", { type: "button", id: "run-failed", class: "danger", disabled: run.state === "failed", onclick: () => markRun("failed") }, "Mark run failed")));
    runStatus = Object.fromEntries(Object.entries(run.tasks || {}).map(([k, v]) => [k, v.state]));
    drawGraph();
    loadGantt(run);
  };
  loadRuns = async () => {
    if (seq !== renderSeq) return;
    clearTimeout(timer);
    try {
      const r = await rest(base);
      if (seq !== renderSeq) return;
      const runs = r.runs || [];
      if (!runs.some((x) => x.runId === selected)) selected = runs.length ? runs[runs.length - 1].runId : null;
      const select = (runId) => { selected = runId; loadRuns(); };
      const open = (runId, task, ti, finished) => tiBox.replaceChildren(...tiPanel(ctx, runId, task, ti, finished));
      // the grid is drawn anew: the keyboard's focus stays on the same run's or cell's button
      const had = gridBox.contains(document.activeElement) ? document.activeElement : null;
      gridBox.replaceChildren(runs.length ? renderGrid(d.topoOrder || [], runs, open, selected, select)
        : h("p", { class: "muted", id: "grid-empty" }, "No runs yet."));
      if (had && had.dataset.run) {
        const sel = "button." + had.classList[0] + "[data-run=\"" + CSS.escape(had.dataset.run) + "\"]" +
          (had.dataset.task ? "[data-task=\"" + CSS.escape(had.dataset.task) + "\"]" : "");
        const again = gridBox.querySelector(sel);
        if (again) again.focus();
      }
      const run = runs.find((x) => x.runId === selected);
      if (run) showRun(run);
      else { shown = null; runBox.replaceChildren(); ganttBox.replaceChildren(h("p", { class: "muted" }, "No runs yet.")); }
      // refresh while a run is unfinished
      if (runs.some((x) => x.state !== "success" && x.state !== "failed")) timer = setTimeout(loadRuns, 1000);
    } catch (e) {
      gridBox.replaceChildren(h("p", { class: "muted", id: "grid-unavailable" }, "Runs unavailable: " + e.message));
    }
  };
  await loadRuns();
}

// ---- plugins -------------------------------------------------------------------------------

async function viewPlugins(seq) {
  const out = h("div", {}, h("h1", {}, "Plugins"));
  const box = h("section", { class: "card", "aria-label": "Plugins" }, h("p", { class: "muted" }, "Loading…"));
  out.append(box);
  show(out, seq);
  let r;
  try { r = await rest("/v1/plugins"); } catch (e) { box.replaceChildren(errorBox(e)); return; }
  if (!(r.plugins || []).length) { box.replaceChildren(h("p", {}, "No plugins installed (", h("code", {}, "weft plugin install"), ").")); return; }
  box.replaceChildren(h("div", { class: "scroll" }, h("table", { class: "plugins" },
    h("thead", {}, h("tr", {}, ["Plugin", "World", "Digest", "Requested grant", "Used by"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, r.plugins.map((p) => h("tr", {},
      h("td", {}, h("strong", {}, p.name), "@" + p.version, p.description ? h("div", { class: "muted" }, p.description) : null),
      h("td", {}, p.world),
      h("td", { class: "mono" }, h("span", { title: p.digest }, p.digest.slice(0, 16) + "…")),
      h("td", {}, p.grant ? grantSummary(p.grant) : h("span", { class: "muted" }, "none")),
      h("td", {},
        p.stateMachines.map((n) => h("div", {}, "state machine ", h("a", { href: "#/sm/" + encodeURIComponent("arn:aws:states:us-east-1:000000000000:stateMachine:" + n) }, n))),
        p.dags.map((n) => h("div", {}, "DAG ", h("a", { href: "#/dag/" + encodeURIComponent(n) }, n))),
        !p.stateMachines.length && !p.dags.length ? h("span", { class: "muted" }, "unused") : null)))))));
}

function grantSummary(grant) {
  const st = Array.isArray(grant.Statement) ? grant.Statement : [grant.Statement].filter(Boolean);
  return h("div", {},
    h("ul", { class: "grant" }, st.map((x) => h("li", {},
      h("span", { class: x.Effect === "Deny" ? "error" : "" }, x.Effect || "?"), " ",
      [].concat(x.Action || []).join(", "), " on ", [].concat(x.Resource || []).join(", ")))),
    h("details", {}, h("summary", {}, "Policy JSON"), h("pre", {}, JSON.stringify(grant, null, 2))));
}

// ---- assets --------------------------------------------------------------------------------

// The assets the caller may read (Airflow's /api/v2/assets) with the DAG tasks that produce
// them and the DAGs scheduled on them, and the most recent asset events.
async function viewAssets(seq) {
  const out = h("div", {}, h("h1", {}, "Assets"));
  const box = h("section", { class: "card", "aria-label": "Assets" }, h("p", { class: "muted" }, "Loading…"));
  const events = h("section", { class: "card", "aria-label": "Recent asset events" }, h("h2", {}, "Recent events"));
  out.append(box, events);
  show(out, seq);
  let r, ev;
  try {
    [r, ev] = await Promise.all([
      rest("/api/v2/assets?order_by=uri&limit=1000"),
      rest("/api/v2/assets/events?order_by=-timestamp&limit=50"),
    ]);
  } catch (e) { box.replaceChildren(errorBox(e)); return; }
  if (seq !== renderSeq) return;
  const dagLink = (d) => h("a", { href: "#/dag/" + encodeURIComponent(d) }, d);
  const byId = new Map((r.assets || []).map((a) => [a.id, a.uri]));
  if (!(r.assets || []).length) {
    box.replaceChildren(h("p", {}, "No assets: tasks name them in ", h("code", {}, "outlets"), ", DAGs in an asset ", h("code", {}, "schedule"), "."));
  } else {
    box.replaceChildren(h("div", { class: "scroll" }, h("table", { class: "assets" },
      h("thead", {}, h("tr", {}, ["Asset", "Produced by", "Schedules", "Last event"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, r.assets.map((a) => h("tr", { "data-asset-id": a.id },
        h("td", { class: "mono" }, a.uri),
        h("td", {}, a.producing_tasks.length ? a.producing_tasks.map((t) => h("div", {}, dagLink(t.dag_id), "." + t.task_id)) : h("span", { class: "muted" }, "none")),
        h("td", {}, a.scheduled_dags.length ? a.scheduled_dags.map((d) => h("div", {}, dagLink(d.dag_id))) : h("span", { class: "muted" }, "none")),
        h("td", {}, a.last_asset_event ? fmtTime(a.last_asset_event.timestamp) : h("span", { class: "muted" }, "never"))))))));
  }
  const list = ev.asset_events || [];
  events.append(list.length ? h("div", { class: "scroll" }, h("table", { class: "asset-events" },
    h("thead", {}, h("tr", {}, ["Time", "Asset", "Source", "Runs created", "Extra"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, list.map((e) => h("tr", {},
      h("td", {}, fmtTime(e.timestamp)),
      h("td", { class: "mono" }, e.uri || byId.get(e.asset_id) || String(e.asset_id)),
      h("td", {}, e.source_dag_id ? [dagLink(e.source_dag_id), "." + (e.source_task_id || ""), h("div", { class: "muted" }, e.source_run_id || "")] : h("span", { class: "muted" }, "API")),
      h("td", {}, e.created_dagruns.length ? e.created_dagruns.map((d) => h("div", {}, dagLink(d.dag_id), " " + d.run_id + " (" + d.state + ")")) : h("span", { class: "muted" }, "none")),
      h("td", { class: "mono" }, Object.keys(e.extra || {}).length ? JSON.stringify(e.extra) : ""))))))
    : h("p", { class: "muted", id: "no-asset-events" }, "No asset events yet."));
}

// ---- workers -------------------------------------------------------------------------------

async function viewWorkers(seq) {
  const out = h("div", {}, h("h1", {}, "Workers"));
  const box = h("section", { class: "card", "aria-label": "Workers" }, h("p", { class: "muted" }, "Loading…"));
  out.append(box);
  show(out, seq);
  // refreshes the table only (focus stays where the reader put it)
  const load = async () => {
    if (seq !== renderSeq) return;
    let r;
    try { r = await rest("/v1/workers"); } catch (e) { box.replaceChildren(errorBox(e)); return; }
    const queues = h("p", { id: "queue-depths" }, "Queues: ",
      (r.queues || []).length ? r.queues.map((q) => q.queue + " " + q.depth + " waiting").join(", ") : "none waiting",
      " · running on workers: " + (r.running || 0));
    if (!(r.workers || []).length) {
      box.replaceChildren(queues, h("p", {}, "No worker connected (", h("code", {}, "weft worker --server URL"), ")."));
    } else {
      box.replaceChildren(queues, h("div", { class: "scroll" }, h("table", { class: "workers" },
        h("thead", {}, h("tr", {}, ["Worker", "Queues", "Slots (busy / all)", "Current tasks"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, r.workers.map((w) => h("tr", {},
          h("td", {}, h("strong", {}, w.worker_id), w.draining ? [" ", h("span", { class: "badge ABORTED", title: "shutting down: takes no new task, its running tasks finish" }, "draining")] : null,
            h("div", { class: "muted" }, w.host)),
          h("td", {}, w.queues.join(", ")),
          h("td", {}, w.busy + " / " + w.slots),
          h("td", {}, w.tasks.length ? w.tasks.map((t) => h("div", { class: "mono" }, t)) : h("span", { class: "muted" }, "idle"))))))));
    }
    if (seq === renderSeq) { clearTimeout(refreshTimer); refreshTimer = setTimeout(load, 2000); }
  };
  await load();
}

// ---- router --------------------------------------------------------------------------------

function show(node, seq) {
  if (seq !== renderSeq) return;
  main.replaceChildren(node);
  main.focus({ preventScroll: true });
}

function route() {
  clearTimeout(refreshTimer);
  if (liveSource) { liveSource.close(); liveSource = null; }
  const seq = ++renderSeq;
  const hash = location.hash.replace(/^#/, "") || "/";
  let m;
  let title = "State machines";
  let nav = "/";
  if ((m = hash.match(/^\/sm\/(.+)$/))) {
    title = nameOfArn(decodeURIComponent(m[1]));
    viewStateMachine(decodeURIComponent(m[1]), seq);
  } else if ((m = hash.match(/^\/exec\/(.+)$/))) {
    title = "execution " + nameOfArn(decodeURIComponent(m[1]));
    nav = "/executions";
    viewExecution(decodeURIComponent(m[1]), seq);
  } else if (hash === "/executions") {
    title = "Executions"; nav = "/executions";
    viewExecutions(seq);
  } else if (hash === "/dags") {
    title = "DAGs"; nav = "/dags";
    viewDags(seq);
  } else if ((m = hash.match(/^\/dag\/(.+)$/))) {
    title = "DAG " + decodeURIComponent(m[1]); nav = "/dags";
    viewDag(decodeURIComponent(m[1]), seq);
  } else if (hash === "/assets") {
    title = "Assets"; nav = "/assets";
    viewAssets(seq);
  } else if (hash === "/plugins") {
    title = "Plugins"; nav = "/plugins";
    viewPlugins(seq);
  } else if (hash === "/workers") {
    title = "Workers"; nav = "/workers";
    viewWorkers(seq);
  } else {
    viewList(seq);
  }
  document.title = "weft server · " + title;
  for (const a of document.querySelectorAll("nav.main a")) {
    if (a.getAttribute("href") === "#" + nav) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

setupLogin();
window.addEventListener("hashchange", route);
route();
