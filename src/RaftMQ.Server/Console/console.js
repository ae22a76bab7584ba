// The RaftMQ console: polls GET /v1/cluster/overview on the node that served the page and redraws. Plain
// JavaScript, no dependencies. Optional endpoints (GET /v1/topics/{topic}) are asked for and shown when the node
// has them; a 404 or 405 means "not available" on this node's version.
"use strict";

const POLL_MS = 500;
const HISTORY = 240; // samples in the chart: 2 minutes at POLL_MS
const history = []; // {t, published, consumed} totals over all topics
const previousTopics = new Map(); // topic -> {t, published, consumed}
let detailTopic = "";

const $ = (selector) => document.querySelector(selector);

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

// A member's row is kept from one poll to the next and only its cells are rewritten: its Remove button stays the
// same element, so a click (press and release) that spans a redraw still lands on it.
function memberRow(body, m) {
  const existing = [...body.rows].find((r) => r.dataset.node === String(m.node) && r.dataset.url === m.url);
  if (existing) return existing;
  const row = document.createElement("tr");
  row.dataset.node = String(m.node);
  row.dataset.url = m.url;
  for (let i = 0; i < 9; i++) row.insertCell();
  const remove = document.createElement("button");
  remove.type = "button";
  remove.className = "remove";
  remove.textContent = "Remove";
  remove.title = "remove node " + m.node + " from the cluster (DELETE /v1/cluster/members/" + m.node + ")";
  remove.addEventListener("click", async () => {
    if (!confirm(`Remove node ${m.node} (${m.url}) from the cluster? Stop its process afterwards.`)) return;
    try { await send("DELETE", "/v1/cluster/members/" + m.node); } catch (err) { $("#result").textContent = "failed: " + err.message; }
  });
  row.insertCell().append(remove);
  return row;
}

function setCell(td, text, className) {
  td.textContent = text;
  td.className = className || "";
  td.removeAttribute("title");
  return td;
}

function renderMembers(overview) {
  const body = $("#members tbody");
  const rows = overview.members.map((m) => {
    const row = memberRow(body, m);
    row.dataset.up = String(m.up);
    row.dataset.role = m.up ? m.role : "";
    row.classList.toggle("leader", m.up && m.role === "Leader");
    row.classList.toggle("is-down", !m.up);
    const c = row.cells;
    setCell(c[0], m.node === overview.node ? `${m.node} (this node)` : String(m.node));
    setCell(c[1], m.url);
    const state = setCell(c[2], m.up ? "up" : "down", "state " + (m.up ? "up" : "down"));
    if (!m.up && m.error) state.title = m.error;
    setCell(c[3], m.up ? m.role : "—", "role");
    setCell(c[4], m.up ? String(m.term) : "—", "num");
    setCell(c[5], m.up ? String(m.commit_index) : "—", "num");
    setCell(c[6], m.up ? String(m.applied_index) : "—", "num");
    setCell(c[7], m.up ? String(m.last_index) : "—", "num");
    setCell(c[8], m.up && m.lag !== null ? String(m.lag) : "—", "num lag");
    return row;
  });
  // In node order; the rows of members no longer in the configuration go.
  rows.forEach((row, i) => {
    if (body.rows[i] !== row) body.insertBefore(row, body.rows[i] || null);
  });
  while (body.rows.length > rows.length) body.deleteRow(rows.length);
  const up = overview.members.filter((m) => m.up).length;
  const leader = overview.members.find((m) => m.up && m.role === "Leader");
  $("#summary").textContent = `${up} of ${overview.members.length} nodes up · leader: ${leader ? "node " + leader.node + ", term " + leader.term : "none"}`;
  $("#summary").dataset.leader = leader ? String(leader.node) : "";
}

function renderTopics(overview) {
  const body = $("#topic-table tbody");
  body.textContent = "";
  const now = overview.time_ms;
  for (const t of overview.topics) {
    const row = body.insertRow();
    row.dataset.topic = t.topic;
    const before = previousTopics.get(t.topic);
    const seconds = before ? (now - before.t) / 1000 : 0;
    const rate = (a, b) => (seconds > 0 ? Math.max(0, (a - b) / seconds).toFixed(1) : "—");
    cell(row, t.topic);
    cell(row, String(t.ready), "num ready");
    cell(row, String(t.ready_bytes), "num");
    cell(row, String(t.published), "num published");
    cell(row, String(t.consumed), "num consumed");
    cell(row, before ? rate(t.published, before.published) : "—", "num");
    cell(row, before ? rate(t.consumed, before.consumed) : "—", "num");
    previousTopics.set(t.topic, { t: now, published: t.published, consumed: t.consumed });
  }
  $("#no-topics").hidden = overview.topics.length > 0;
  const select = $("#detail-topic");
  const names = overview.topics.map((t) => t.topic);
  if (select.options.length !== names.length || names.some((n, i) => select.options[i].value !== n)) {
    select.textContent = "";
    for (const n of names) select.add(new Option(n, n));
    if (names.includes(detailTopic)) select.value = detailTopic;
    else detailTopic = select.value;
  }
}

function recordThroughput(overview) {
  const sum = (field) => overview.topics.reduce((s, t) => s + t[field], 0);
  history.push({ t: overview.time_ms, published: sum("published"), consumed: sum("consumed") });
  if (history.length > HISTORY + 1) history.shift();
}

function drawChart() {
  const canvas = $("#chart");
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, pad = 24;
  ctx.clearRect(0, 0, w, h);
  const rates = [];
  for (let i = 1; i < history.length; i++) {
    const dt = (history[i].t - history[i - 1].t) / 1000;
    if (dt <= 0) continue;
    rates.push({
      published: Math.max(0, (history[i].published - history[i - 1].published) / dt),
      consumed: Math.max(0, (history[i].consumed - history[i - 1].consumed) / dt),
    });
  }
  const max = Math.max(1, ...rates.map((r) => Math.max(r.published, r.consumed)));
  ctx.strokeStyle = "#dde1ea";
  ctx.fillStyle = "#6b7385";
  ctx.font = "11px sans-serif";
  ctx.beginPath(); ctx.moveTo(pad, h - pad); ctx.lineTo(w, h - pad); ctx.stroke();
  ctx.fillText(max.toFixed(0) + "/s", 2, 12);
  ctx.fillText("0", 2, h - pad);
  const x = (i) => pad + (i * (w - pad)) / Math.max(1, HISTORY - 1);
  const y = (v) => h - pad - (v / max) * (h - 2 * pad);
  for (const [field, color] of [["published", "#2d6cdf"], ["consumed", "#e08a1e"]]) {
    ctx.strokeStyle = color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    const offset = HISTORY - rates.length;
    rates.forEach((r, i) => (i === 0 ? ctx.moveTo(x(i + offset), y(r[field])) : ctx.lineTo(x(i + offset), y(r[field]))));
    ctx.stroke();
  }
}

// Publish latency, from this node's GET /metrics: the histogram raftmq_http_request_duration_seconds of the publish
// routes, differenced between two scrapes (2 s apart) — the mean and the 99th percentile's bucket bound of the
// publishes this node answered in between. Followers forward publishes, so on a follower it includes the forward.
const PUBLISH_ROUTES = new Set(["/message", "/v1/messages", "/v1/topics/{topic}/publish"]);
const latency = []; // {mean, p99} in ms, or null for an interval with no publish
let previousScrape = null;

function parseLatency(text) {
  const scrape = { count: 0, sum: 0, buckets: new Map() };
  const line = /^raftmq_http_request_duration_seconds_(sum|count|bucket)\{((?:[^}"]|"(?:[^"\\]|\\.)*")*)\}\s+(\S+)/;
  for (const l of text.split("\n")) {
    const m = line.exec(l);
    if (!m) continue;
    const labels = Object.fromEntries([...m[2].matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (!PUBLISH_ROUTES.has(labels.route)) continue;
    const value = Number(m[3]);
    if (m[1] === "sum") scrape.sum += value;
    else if (m[1] === "count") scrape.count += value;
    else scrape.buckets.set(labels.le, (scrape.buckets.get(labels.le) || 0) + value);
  }
  return scrape;
}

async function refreshLatency() {
  try {
    const answer = await api("/metrics", { cache: "no-store" });
    if (!answer.ok) throw new Error("HTTP " + answer.status);
    const scrape = parseLatency(await answer.text());
    if (previousScrape) {
      const count = scrape.count - previousScrape.count;
      let sample = null;
      if (count > 0) {
        const mean = ((scrape.sum - previousScrape.sum) / count) * 1000;
        const bounds = [...scrape.buckets.keys()].filter((le) => le !== "+Inf").sort((a, b) => Number(a) - Number(b));
        const p99 = bounds.find((le) => scrape.buckets.get(le) - (previousScrape.buckets.get(le) || 0) >= 0.99 * count);
        sample = { mean, p99: p99 === undefined ? null : Number(p99) * 1000 };
      }
      latency.push(sample);
      if (latency.length > HISTORY / 4) latency.shift();
      const last = $("#latency-last");
      last.textContent = sample ? `last 2 s: ${count} publishes, mean ${sample.mean.toFixed(1)} ms, p99 ≤ ${sample.p99 === null ? "> 10 s" : sample.p99 + " ms"}` : "last 2 s: no publishes on this node";
      last.dataset.count = String(count);
    }
    previousScrape = scrape;
    drawLatency();
  } catch (e) {
    $("#latency-last").textContent = "not available: " + e.message;
  }
}

function drawLatency() {
  const canvas = $("#latency-chart");
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, pad = 24, slots = HISTORY / 4;
  ctx.clearRect(0, 0, w, h);
  const max = Math.max(1, ...latency.filter((s) => s).map((s) => Math.max(s.mean, s.p99 ?? 0)));
  ctx.strokeStyle = "#dde1ea";
  ctx.fillStyle = "#6b7385";
  ctx.font = "11px sans-serif";
  ctx.beginPath(); ctx.moveTo(pad, h - pad); ctx.lineTo(w, h - pad); ctx.stroke();
  ctx.fillText(max.toFixed(max < 10 ? 1 : 0) + " ms", 2, 12);
  ctx.fillText("0", 2, h - pad);
  const x = (i) => pad + (i * (w - pad)) / Math.max(1, slots - 1);
  const y = (v) => h - pad - (Math.min(v, max) / max) * (h - 2 * pad);
  canvas.dataset.samples = String(latency.filter((s) => s).length);
  const offset = slots - latency.length;
  for (const [field, color] of [["p99", "#8e44ad"], ["mean", "#1f8a4c"]]) {
    ctx.strokeStyle = color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    let drawing = false;
    latency.forEach((s, i) => {
      if (!s || s[field] === null) { drawing = false; return; } // a gap: no publish in that interval
      if (drawing) ctx.lineTo(x(i + offset), y(s[field])); else ctx.moveTo(x(i + offset), y(s[field]));
      drawing = true;
    });
    ctx.stroke();
  }
}

async function refreshDetails() {
  const body = $("#detail-body");
  if (!detailTopic) { body.textContent = "no topic selected"; body.className = "muted"; return; }
  const topic = detailTopic;
  try {
    const answer = await api("/v1/topics/" + encodeURIComponent(topic), { cache: "no-store" });
    if (answer.status === 404 || answer.status === 405) { body.textContent = "not available on this node"; body.className = "muted"; return; }
    const stats = await answer.json();
    if (!answer.ok) throw new Error(stats.error || "HTTP " + answer.status);
    if (topic !== detailTopic) return; // another topic was chosen while this one was asked for
    renderDetails(body, stats);
  } catch (e) {
    body.textContent = "not available: " + e.message;
    body.className = "muted";
  }
}

// The topic's groups (one row each) and its dead letters, with a button that redrives them.
function renderDetails(body, stats) {
  const focused = document.activeElement === redriveButton; // moving it out and back in would drop a keyboard user's focus
  body.className = "";
  body.textContent = "";
  body.dataset.topic = stats.topic;
  const table = document.createElement("table");
  table.id = "groups";
  const head = table.createTHead().insertRow();
  for (const h of ["group", "ready", "leased", "delayed", "unacked", "dead-lettered", "oldest age", "unacked by deliveries"]) {
    const th = document.createElement("th");
    th.textContent = h;
    head.append(th);
  }
  const rows = table.createTBody();
  for (const g of stats.groups || []) {
    const row = rows.insertRow();
    row.dataset.group = g.group;
    cell(row, g.group);
    cell(row, String(g.ready), "num ready");
    cell(row, String(g.leased), "num leased");
    cell(row, String(g.delayed), "num delayed");
    cell(row, String(g.unacked), "num unacked");
    const deadLettered = cell(row, String(g.dead_lettered_total), "num dead-lettered");
    deadLettered.title = "messages this group dead-lettered so far";
    cell(row, g.oldest_age_ms === null || g.oldest_age_ms === undefined ? "—" : formatAge(g.oldest_age_ms), "num age");
    // The delivery-count histogram's delivered buckets ("0", never delivered, is the rest of unacked): "1: 3, 2: 1".
    const delivered = Object.entries(g.delivery_counts || {}).filter(([k, v]) => k !== "0" && v > 0);
    const deliveries = cell(row, delivered.length === 0 ? "—" : delivered.map(([k, v]) => `${k}: ${v}`).join(", "), "deliveries");
    deliveries.title = "unacked messages by how many times they were delivered (deliveries: messages)";
  }
  const dead = document.createElement("p");
  dead.id = "dead-letters";
  dead.dataset.count = String(stats.dead_lettered);
  dead.append(`dead letters: `);
  const count = document.createElement("strong");
  count.className = stats.dead_lettered > 0 ? "down" : "";
  count.textContent = String(stats.dead_lettered);
  dead.append(count, " ");
  redriveButton.dataset.topic = stats.topic;
  redriveButton.disabled = !(stats.dead_lettered > 0);
  dead.append(redriveButton);
  body.append(table, dead);
  if (focused) redriveButton.focus();
}

// One Redrive button, moved into each redraw of the details rather than made anew: a click that spans a redraw
// still lands on it. It acts on the topic the details last showed.
const redriveButton = (() => {
  const redrive = document.createElement("button");
  redrive.id = "redrive";
  redrive.type = "button";
  redrive.textContent = "Redrive";
  redrive.title = "move up to 100 of the oldest dead letters back to the end of the topic";
  redrive.addEventListener("click", async () => {
    redrive.disabled = true;
    try { await send("POST", "/v1/topics/" + encodeURIComponent(redrive.dataset.topic) + "/redrive", { max: 100 }); }
    catch (err) { $("#result").textContent = "failed: " + err.message; }
    refreshDetails();
  });
  return redrive;
})();

function formatAge(ms) {
  if (ms < 1000) return ms + " ms";
  if (ms < 120_000) return (ms / 1000).toFixed(1) + " s";
  if (ms < 7_200_000) return (ms / 60_000).toFixed(1) + " min";
  return (ms / 3_600_000).toFixed(1) + " h";
}

let polls = 0;
async function poll() {
  try {
    const answer = await api("/v1/cluster/overview", { cache: "no-store" });
    if (answer.status === 401) throw new Error("HTTP 401: the node asks for an API key (enter it above, right)");
    if (!answer.ok) throw new Error("HTTP " + answer.status);
    const overview = await answer.json();
    renderMembers(overview);
    renderTopics(overview);
    recordThroughput(overview);
    drawChart();
    $("#updated").textContent = "updated " + new Date(overview.time_ms).toLocaleTimeString();
    document.body.dataset.ready = "true";
    if (polls++ % 4 === 0) { refreshDetails(); refreshLatency(); }
  } catch (e) {
    $("#summary").textContent = "this node does not answer: " + e.message;
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

// With --auth-file the node asks for an API key: the one typed in the header is kept for this tab (sessionStorage)
// and sent as "Authorization: Bearer KEY" with every request of the console.
function api(path, options = {}) {
  const key = sessionStorage.getItem("raftmq-api-key");
  const headers = { ...(options.headers || {}) };
  if (key) headers.authorization = "Bearer " + key;
  return fetch(path, { ...options, headers }).then((answer) => {
    if (answer.status === 401) $("#api-key").classList.add("down");
    return answer;
  });
}

$("#api-key").value = sessionStorage.getItem("raftmq-api-key") || "";
$("#api-key").addEventListener("change", (e) => {
  const key = e.target.value.trim();
  if (key) sessionStorage.setItem("raftmq-api-key", key); else sessionStorage.removeItem("raftmq-api-key");
  e.target.classList.remove("down");
});

async function send(method, path, body) {
  const answer = await api(path, {
    method,
    headers: body ? { "content-type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await answer.text();
  $("#result").textContent = `${method} ${path} → ${answer.status}\n${text}`;
  $("#result").className = answer.ok ? "" : "down";
}

function onSubmit(id, action) {
  $(id).addEventListener("submit", async (e) => {
    e.preventDefault();
    const data = new FormData(e.target);
    try { await action(data); } catch (err) { $("#result").textContent = "failed: " + err.message; }
  });
}

onSubmit("#create-form", (d) => send("PUT", "/topic", { topic: d.get("topic") }));
onSubmit("#publish-form", (d) => send("PUT", "/message", { topic: d.get("topic"), message: d.get("message") }));
onSubmit("#pop-form", (d) => send("GET", "/message/" + encodeURIComponent(d.get("topic"))));
onSubmit("#add-member-form", (d) => send("POST", "/v1/cluster/members", { url: d.get("url") }));
$("#detail-topic").addEventListener("change", (e) => { detailTopic = e.target.value; refreshDetails(); });
poll();
