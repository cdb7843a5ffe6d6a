/* Loom operator dashboard: plain JS, no build step, no external resources.
 *
 * Everything live comes from loomd's HTTP/JSON API (/v1, docs/HTTP_API.md),
 * so the pages show the same data with the in-memory and the PostgreSQL
 * store (with PostgreSQL, List and Get reach back into history). Only the
 * "SLA & cost history" page reads the PostgreSQL views (/api/<view>).
 *
 * Pages (deep links, hash routes):
 *   #/runs?state=&workflow=&tenant=&label=k=v,..&since=&until=&page=
 *   #/runs/<run id>       steps, Gantt timeline, inputs/outputs, events, cancel/retry
 *   #/fleet               workers: busy (running) vs queued, memory, models, series
 *   #/history             SLA attainment and cost over time (PostgreSQL)
 *
 * States are written as protocol/states.h says: the enum name the API
 * sends without its prefix, in lower case (RUN_SUCCEEDED -> succeeded). */
'use strict';

const $ = (sel, root) => (root || document).querySelector(sel);
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v != null && v !== false) e.setAttribute(k, v === true ? '' : v);
  for (const k of kids.flat()) if (k != null) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}
/* node.replaceChildren with el()'s rules: arrays flattened, nulls dropped. */
function put(node, ...kids) { node.replaceChildren(...kids.flat().filter(k => k != null)); }
function svg(tag, attrs, text) {
  const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v != null) e.setAttribute(k, v);
  if (text != null) e.textContent = text;
  return e;
}

/* ---- vocabulary and formatting ------------------------------------------ */

const word = name => String(name || '').replace(/^[A-Z]+_/, '').toLowerCase();
/* Event kinds likewise, without RUN_EVENT_: "step_started", "run_finished". */
const eventWord = name => String(name || '').replace(/^RUN_EVENT_/, '').toLowerCase();
let RUN_STATE_NAMES = [];  /* RunState enum names, from /v1/openapi.json */
const ACTIVE = new Set(['queued', 'running']);
const DEVICES = { DEVICE_KIND_CPU: 'cpu', DEVICE_KIND_GPU: 'gpu', DEVICE_KIND_NPU: 'npu' };
const device = k => DEVICES[k] || '';
const num = v => (v == null || v === '' ? NaN : Number(v));

function fmtMs(v) {
  const ms = num(v);
  if (!(ms >= 0)) return '';
  if (ms < 1000) return Math.round(ms) + ' ms';
  if (ms < 60000) return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + ' s';
  const m = Math.floor(ms / 60000);
  return m + ' min ' + Math.round((ms % 60000) / 1000) + ' s';
}
/* Costs: whole dollars from $100, cents from 1 cent, three significant
 * digits below (a fraction of a cent is what a step on a CPU costs), "$0"
 * for free. */
function fmtCost(v) {
  const c = num(v);
  if (!(c >= 0)) return '';
  if (c === 0) return '$0';
  if (c >= 100) return '$' + c.toFixed(0);
  if (c >= 0.01) return '$' + c.toFixed(2);
  if (c < 1e-6) return '< $0.000001';
  return '$' + String(Number(c.toPrecision(3)));
}
function fmtTime(ms) {
  const t = num(ms);
  return t > 0 ? new Date(t).toISOString().replace('T', ' ').slice(0, 19) : '';
}
function fmtBytes(b) {
  const v = num(b);
  if (!(v > 0)) return '';
  return v >= 2 ** 30 ? (v / 2 ** 30).toFixed(1) + ' GiB' : (v / 2 ** 20).toFixed(0) + ' MiB';
}
const pct = v => (v == null || isNaN(v) ? '' : (100 * v).toFixed(0) + '%');
const stateBadge = s => el('span', { class: 'state state-' + s }, s);
function labelChips(labels, skipCwd) {
  return (labels || []).filter(l => !(skipCwd && l.key === 'cwd'))
    .map(l => el('span', { class: 'chip', title: l.key + '=' + l.value }, l.key + '=' + l.value));
}
function jsonText(s) {
  if (!s) return '';
  try { return JSON.stringify(JSON.parse(s), null, 2); } catch (e) { return s; }
}

/* ---- the API ------------------------------------------------------------ */

let token = sessionStorage.getItem('loom.token') || '';
function authHeaders() { return token ? { Authorization: 'Bearer ' + token } : {}; }

async function api(path, opts) {
  const o = Object.assign({}, opts || {});
  const sent = token;
  o.headers = Object.assign({}, o.headers || {}, authHeaders());
  const r = await fetch(path, o);
  let body = null;
  try { body = await r.json(); } catch (e) { body = null; }
  /* A 401 to a request sent before the user typed a new token (the page's
   * first requests, still in flight) says nothing about the new one. */
  if (r.status === 401 && sent === token)
    askToken((body && (body.message || body.error)) || 'this loomd wants a bearer token');
  if (!r.ok) {
    const err = new Error((body && (body.message || body.error)) || r.status + ' ' + r.statusText);
    err.status = r.status;
    throw err;
  }
  return body;
}

function askToken(why) {
  $('#token-form').hidden = false;
  $('#token-why').textContent = why || '';
}
$('#token-button').onclick = () => askToken('');
$('#token-form').onsubmit = async ev => {
  ev.preventDefault();
  token = $('#token-input').value.trim();
  if (token) sessionStorage.setItem('loom.token', token); else sessionStorage.removeItem('loom.token');
  $('#token-form').hidden = true;
  await vocabulary();
  route();
};

/* Server-sent events of a run, read with fetch (EventSource cannot send
 * the Authorization header). Calls onEvent(kind, RunEvent) per event;
 * returns when the stream ends or signal aborts. */
async function runEvents(id, onEvent, signal) {
  const r = await fetch('/v1/runs/' + encodeURIComponent(id) + '/events', { headers: authHeaders(), signal });
  if (!r.ok || !(r.headers.get('content-type') || '').startsWith('text/event-stream')) return r.status;
  const reader = r.body.getReader(), dec = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return 200;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      let kind = '', data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) kind = line.slice(7);
        else if (line.startsWith('data: ')) data += line.slice(6);
      }
      if (kind && data && kind !== 'end') onEvent(kind, JSON.parse(data));
    }
  }
}

/* ---- page plumbing ------------------------------------------------------ */

let timer = null, aborter = null, gen = 0; /* gen: which page render is current */
function stopLive() {
  if (timer) clearInterval(timer);
  timer = null;
  if (aborter) aborter.abort();
  aborter = null;
}
function startPage(name) {
  stopLive();
  gen++;
  document.body.dataset.page = name;
  document.body.dataset.loaded = 'no';
  for (const a of document.querySelectorAll('nav a')) a.classList.toggle('current', a.id === 'nav-' + (name === 'run' ? 'runs' : name));
  const root = $('#page');
  root.replaceChildren();
  return root;
}
function loaded() {
  document.body.dataset.loaded = 'yes';
  $('#error').hidden = true;
  $('#updated').textContent = 'updated ' + new Date().toISOString().slice(11, 19) + ' UTC';
}
function failed(e) {
  document.body.dataset.loaded = 'error';
  $('#error').hidden = false;
  $('#error').textContent = 'error: ' + e.message;
}
/* Runs load() now and every ms while the page stays. */
async function every(ms, load) {
  const mine = gen;
  const tick = async () => {
    try { await load(); if (gen === mine) loaded(); } catch (e) { if (gen === mine) failed(e); }
  };
  await tick();
  if (gen === mine) timer = setInterval(tick, ms);
}

async function health() {
  try {
    const h = await api('/v1/health');
    const b = $('#health');
    b.textContent = `${h.status.toLowerCase().replace('_', ' ')} · ${h.workers} workers · ${h.active_runs} active · v${h.version}`;
    b.className = 'badge ' + (h.status === 'SERVING' ? 'ok' : 'degraded');
  } catch (e) {
    $('#health').textContent = 'unreachable';
    $('#health').className = 'badge degraded';
  }
}

/* ---- runs list ---------------------------------------------------------- */

function pageRuns(q) {
  const root = startPage('runs');
  const input = (name, attrs) => el('label', {}, attrs.label, el('input', Object.assign({ name, value: q.get(name) || '' }, attrs.input)));
  const states = el('select', { name: 'state' }, el('option', { value: '' }, 'any'),
    RUN_STATE_NAMES.map(n => el('option', { value: word(n), selected: q.get('state') === word(n) }, word(n))));
  const form = el('form', { id: 'filters', class: 'filters' },
    el('label', {}, 'state ', states),
    input('workflow', { label: 'workflow ', input: { size: 14 } }),
    input('tenant', { label: 'tenant ', input: { size: 10 } }),
    input('label', { label: 'labels ', input: { size: 16, placeholder: 'key=value,…' } }),
    input('since', { label: 'since (UTC) ', input: { type: 'datetime-local' } }),
    input('until', { label: 'until (UTC) ', input: { type: 'datetime-local' } }),
    el('button', { type: 'submit' }, 'filter'), el('a', { href: '#/runs' }, 'clear'));
  form.onsubmit = ev => {
    ev.preventDefault();
    const p = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (v) p.set(k, v);
    location.hash = '#/runs' + (p.toString() ? '?' + p : '');
  };
  const table = el('table', { id: 'runs' }, el('thead', {}, el('tr', {},
    ['run', 'workflow', 'state', 'submitted (UTC)', 'duration', 'SLA', 'cost', 'tenant', 'labels'].map(h => el('th', {}, h)))), el('tbody'));
  const pager = el('p', { id: 'pager' });
  root.append(el('h2', {}, 'Runs'), form, el('div', { class: 'scroll' }, table), pager);

  const p = new URLSearchParams({ limit: q.get('limit') || '50' });
  const stateName = RUN_STATE_NAMES.find(n => word(n) === q.get('state'));
  if (stateName) p.set('state', stateName);
  if (q.get('workflow')) p.set('workflow_name', q.get('workflow'));
  if (q.get('tenant')) p.set('tenant', q.get('tenant'));
  if (q.get('label')) p.set('labels', q.get('label'));
  if (q.get('since')) p.set('submitted_after_unix_ms', String(Date.parse(q.get('since') + 'Z')));
  if (q.get('until')) p.set('submitted_before_unix_ms', String(Date.parse(q.get('until') + 'Z')));
  if (q.get('page')) p.set('page_token', q.get('page'));

  return every(3000, async () => {
    const [rep] = await Promise.all([api('/v1/runs?' + p), health()]);
    $('tbody', table).replaceChildren(...rep.runs.map(r => {
      const s = word(r.state);
      return el('tr', { 'data-run': r.run_id, 'data-state': s },
        el('td', {}, el('a', { href: '#/runs/' + encodeURIComponent(r.run_id) }, r.run_id)),
        el('td', {}, r.workflow_name), el('td', {}, stateBadge(s)),
        el('td', {}, fmtTime(r.submitted_unix_ms)), el('td', { class: 'num' }, fmtMs(r.elapsed_ms)),
        el('td', { class: 'sla sla-' + (r.sla || 'none'), title: num(r.sla_latency_ms) > 0 ? 'SLA ' + fmtMs(r.sla_latency_ms) : 'no SLA' }, r.sla || ''),
        el('td', { class: 'num cost' }, ACTIVE.has(s) && !(num(r.cost_usd) > 0) ? '' : fmtCost(r.cost_usd)), el('td', {}, r.tenant),
        el('td', { class: 'labels' }, labelChips(r.labels, true)));
    }));
    if (!rep.runs.length) $('tbody', table).append(el('tr', {}, el('td', { colspan: 9, class: 'empty' }, 'no runs match')));
    const links = [];
    if (q.get('page')) { const f = new URLSearchParams(q); f.delete('page'); links.push(el('a', { id: 'first-page', href: '#/runs?' + f }, '« newest')); }
    if (rep.next_page_token) { const n = new URLSearchParams(q); n.set('page', rep.next_page_token); links.push(el('a', { id: 'next-page', href: '#/runs?' + n }, 'older »')); }
    pager.replaceChildren(...links);
  });
}

/* ---- one run ------------------------------------------------------------- */

const DEV_COLOR = { cpu: '#4e79a7', gpu: '#59a14f', npu: '#f28e2b', '': '#aaa' };

/* Gantt chart: one row per step (foreach items are steps "x[i]" of their
 * own), or one row per worker; bars from dispatch to end, coloured by
 * device; the placement's predicted duration as an outline under each bar. */
function drawGantt(box, run, byWorker) {
  const t0 = num(run.submitted_unix_ms), now = Date.now();
  const steps = run.steps || [];
  const end = s => (num(s.finished_unix_ms) > 0 ? num(s.finished_unix_ms) : now);
  const started = steps.filter(s => num(s.started_unix_ms) > 0);
  const predEnd = s => num(s.started_unix_ms) - t0 + (num(s.predicted_ms) || 0);
  const span = Math.max(1, ...started.map(s => Math.max(end(s) - t0, predEnd(s))), num(run.elapsed_ms) || 1);
  const W = 1000, L = 260, R = 10, RH = 24, T = 24;
  const MIN_W = 2; /* px: the narrowest bar drawn */
  let rows;
  if (byWorker) {
    /* one lane per task running at once on a worker (its slots); a bar
     * ends where it is drawn, so a task shorter than MIN_W does not share
     * its lane with one starting under it */
    const drawnEnd = s => Math.max(end(s), num(s.started_unix_ms) + MIN_W * span / (W - L - R));
    const lanes = new Map();
    const onWorkers = started.filter(s => s.worker_id) /* foreach/loop steps as a whole have none */
      .sort((a, b) => num(a.started_unix_ms) - num(b.started_unix_ms));
    for (const s of onWorkers) {
      if (!lanes.has(s.worker_id)) lanes.set(s.worker_id, []);
      const ls = lanes.get(s.worker_id);
      let lane = ls.find(l => l.end <= num(s.started_unix_ms));
      if (!lane) ls.push(lane = { end: 0, bars: [] });
      lane.bars.push(s);
      lane.end = drawnEnd(s);
    }
    rows = [...lanes].flatMap(([w, ls]) => ls.map((l, i) => ({
      label: i ? '' : w + (device(l.bars[0].device_kind) ? ' · ' + device(l.bars[0].device_kind) : ''),
      bars: l.bars, key: w })));
  } else {
    rows = steps.map(s => ({ label: s.step_id, sub: s.worker_id ? s.worker_id + ' · ' + device(s.device_kind) : word(s.state), bars: num(s.started_unix_ms) > 0 ? [s] : [], step: s, key: s.step_id }));
  }
  const H = T + rows.length * RH + 6;
  const X = ms => L + (ms / span) * (W - L - R);
  const g = svg('svg', { id: 'gantt', viewBox: `0 0 ${W} ${H}`, width: '100%', height: H, 'data-rows': rows.length });
  const step = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000, 60000, 300000, 600000].find(v => span / v <= 8) || 1800000;
  for (let t = 0; t <= span; t += step) {
    g.append(svg('line', { x1: X(t), x2: X(t), y1: T - 6, y2: H, stroke: '#e3e6ea' }));
    g.append(svg('text', { x: X(t) + 2, y: T - 10, class: 'tick' }, fmtMs(t)));
  }
  rows.forEach((row, i) => {
    const y = T + i * RH;
    const grp = svg('g', { class: 'row', 'data-key': row.key });
    grp.append(svg('text', { x: 4, y: y + 15, class: 'row-label' }, row.label.length > 30 ? row.label.slice(0, 29) + '…' : row.label));
    if (row.sub) grp.append(svg('text', { x: L - 6, y: y + 15, class: 'row-sub', 'text-anchor': 'end' }, row.sub.length > 22 ? row.sub.slice(0, 21) + '…' : row.sub));
    if (row.step && num(row.step.predicted_ms) > 0 && num(row.step.started_unix_ms) > 0) {
      const a = num(row.step.started_unix_ms) - t0;
      grp.append(svg('rect', { x: X(a), y: y + 16, width: Math.max(2, X(predEnd(row.step)) - X(a)), height: 5, class: 'predicted' }));
    }
    for (const s of row.bars) {
      const a = num(s.started_unix_ms) - t0, b = end(s) - t0, st = word(s.state);
      const bar = svg('rect', { x: X(a), y: y + 3, width: Math.max(MIN_W, X(b) - X(a)), height: 12, rx: 2,
        fill: DEV_COLOR[device(s.device_kind)] || '#aaa', class: 'bar bar-' + st, 'data-step': s.step_id, 'data-worker': s.worker_id || '' });
      bar.append(svg('title', {}, `${s.step_id} (${s.op}) ${st} on ${s.worker_id || '?'} ${device(s.device_kind)}: ${fmtMs(b - a)}` +
        (num(s.predicted_ms) > 0 ? `, predicted ${fmtMs(s.predicted_ms)}` : '')));
      grp.append(bar);
      if (byWorker && X(b) - X(a) > 60) grp.append(svg('text', { x: X(a) + 3, y: y + 13, class: 'bar-label' }, s.step_id));
    }
    g.append(grp);
  });
  box.replaceChildren(g);
}

function stepRows(run) {
  const t0 = num(run.submitted_unix_ms);
  const rows = [];
  for (const s of run.steps || []) {
    const st = word(s.state), dev = device(s.device_kind);
    const detail = el('tr', { class: 'detail', hidden: true }, el('td', { colspan: 12 },
      s.error ? el('div', { class: 'error-box' }, `${s.error.code}: ${s.error.message}`) : null,
      s.reason ? el('p', {}, 'placement: ' + s.reason) : null,
      s.output_json ? el('pre', {}, jsonText(s.output_json)) : el('p', { class: 'muted' }, 'no output'),
      s.output_truncated ? el('p', { class: 'muted' }, `output cut at 64 KiB; the whole of it: loom logs ${run.run_id} ${s.step_id} --json`) : null));
    const toggle = el('button', { type: 'button', class: 'toggle', title: 'output, error, placement' }, '▸');
    toggle.onclick = () => { detail.hidden = !detail.hidden; toggle.textContent = detail.hidden ? '▸' : '▾'; };
    rows.push(el('tr', { 'data-step': s.step_id, 'data-state': st, class: /\[\d+\]$/.test(s.step_id) ? 'item' : '' },
      el('td', {}, toggle), el('td', {}, s.step_id), el('td', {}, s.op), el('td', {}, stateBadge(st)),
      el('td', { class: 'num' }, s.attempt || ''), el('td', {}, s.worker_id), el('td', { class: 'dev-' + (dev || 'none') }, dev),
      el('td', { class: 'num' }, num(s.started_unix_ms) > 0 ? '+' + fmtMs(num(s.started_unix_ms) - t0) : ''),
      el('td', { class: 'num' }, num(s.started_unix_ms) > 0 ? fmtMs(s.elapsed_ms) : ''),
      el('td', { class: 'num' }, num(s.predicted_ms) > 0 ? fmtMs(s.predicted_ms) : ''),
      el('td', { class: 'num cost' }, num(s.cost_usd) > 0 ? fmtCost(s.cost_usd) : ''),
      el('td', { class: 'err' }, s.error ? s.error.message : '')), detail);
  }
  return rows;
}

function pageRun(id) {
  const root = startPage('run');
  const head = el('section', { id: 'run-head' });
  const msg = el('span', { id: 'action-msg' });
  const cancel = el('button', { id: 'cancel', type: 'button', disabled: true }, 'Cancel run');
  const retry = el('button', { id: 'retry', type: 'button', disabled: true }, 'Retry run');
  let byWorker = false;
  const view = el('button', { id: 'gantt-view', type: 'button' }, 'group by worker');
  const gantt = el('div', { id: 'gantt-box' });
  const steps = el('table', { id: 'steps' }, el('thead', {}, el('tr', {},
    ['', 'step', 'op', 'state', 'attempt', 'worker', 'device', 'start', 'duration', 'predicted', 'cost', 'error'].map(h => el('th', {}, h)))), el('tbody'));
  const io = el('section', { id: 'io' });
  const mod = el('section', { id: 'module' }); /* the partitioned MLIR module the run follows */
  const events = el('table', { id: 'events' }, el('thead', {}, el('tr', {}, ['+time', 'event', 'step', 'worker', 'message'].map(h => el('th', {}, h)))), el('tbody'));
  root.append(el('p', {}, el('a', { href: '#/runs' }, '« runs')), head,
    el('p', { class: 'actions' }, cancel, ' ', retry, ' ', msg),
    el('h3', {}, 'Timeline ', view), el('p', { class: 'legend' }, el('span', { class: 'dev-cpu' }, '■ cpu'), el('span', { class: 'dev-gpu' }, '■ gpu'),
      el('span', { class: 'dev-npu' }, '■ npu'), el('span', { class: 'muted' }, '▭ predicted by the plan')),
    gantt, el('h3', {}, 'Steps'), el('div', { class: 'scroll' }, steps), io, mod, el('h3', {}, 'Events'), el('div', { class: 'scroll' }, events));

  let run = null;
  const render = () => {
    const s = word(run.state), sla = num(run.sla_latency_ms);
    const dl = el('dl', {},
      el('dt', {}, 'workflow'), el('dd', {}, el('a', { href: '#/runs?workflow=' + encodeURIComponent(run.workflow_name) }, run.workflow_name)),
      el('dt', {}, 'tenant'), el('dd', {}, run.tenant),
      el('dt', {}, 'submitted'), el('dd', {}, fmtTime(run.submitted_unix_ms) + ' UTC'),
      el('dt', {}, 'duration'), el('dd', { id: 'run-duration' }, fmtMs(run.elapsed_ms) + (ACTIVE.has(s) ? ' so far' : '')),
      sla > 0 ? [el('dt', {}, 'SLA'), el('dd', { id: 'run-sla', class: 'sla-' + (run.sla || 'none') }, fmtMs(sla) + (run.sla ? ' · ' + run.sla : ''))] : null,
      el('dt', {}, 'cost'), el('dd', { id: 'run-cost' }, fmtCost(run.cost_usd)),
      run.plan && num(run.plan.predicted_latency_ms) > 0 ? [el('dt', {}, 'plan'), el('dd', {},
        `v${run.plan.version}: predicted ${fmtMs(run.plan.predicted_latency_ms)}, ${fmtCost(run.plan.predicted_cost_usd)}`)] : null,
      (run.labels || []).length ? [el('dt', {}, 'labels'), el('dd', {}, labelChips(run.labels, false))] : null);
    put(head, el('h2', {}, 'Run ', el('span', { id: 'run-id' }, run.run_id), ' ', el('span', { id: 'run-state' }, stateBadge(s))), dl,
      run.error ? el('div', { class: 'error-box', id: 'run-error' }, `${run.error.code}: ${run.error.message}`) : null,
      run.plan && (run.plan.notes || []).length ? el('ul', { class: 'notes' }, run.plan.notes.map(n => el('li', {}, n))) : null);
    cancel.disabled = !ACTIVE.has(s);
    retry.disabled = ACTIVE.has(s);
    drawGantt(gantt, run, byWorker);
    const open = new Set([...document.querySelectorAll('#steps tr.detail:not([hidden])')].map(tr => tr.previousSibling.dataset.step));
    $('tbody', steps).replaceChildren(...stepRows(run));
    for (const tr of document.querySelectorAll('#steps tr[data-step]')) if (open.has(tr.dataset.step)) tr.querySelector('button.toggle').click();
    put(io, el('h3', {}, 'Inputs'), el('pre', { id: 'run-inputs' }, jsonText(run.inputs_json) || '{}'),
      run.outputs_json ? [el('h3', {}, 'Outputs'), el('pre', { id: 'run-outputs' }, jsonText(run.outputs_json))] : null);
  };
  const mine = gen;
  const load = async () => {
    const r = (await api('/v1/runs/' + encodeURIComponent(id))).run;
    if (gen === mine) { run = r; render(); }
  };
  view.onclick = () => { byWorker = !byWorker; view.textContent = byWorker ? 'one row per step' : 'group by worker'; if (run) drawGantt(gantt, run, byWorker); };
  cancel.onclick = async () => {
    cancel.disabled = true;
    try {
      const r = await api('/v1/runs/' + encodeURIComponent(id) + '/cancel', { method: 'POST', body: JSON.stringify({ reason: 'cancelled from the dashboard' }) });
      msg.textContent = 'run is ' + word(r.state);
      await load();
    } catch (e) { msg.textContent = 'cancel refused: ' + e.message; cancel.disabled = false; }
  };
  retry.onclick = async () => {
    retry.disabled = true;
    try {
      const r = await api('/v1/runs/' + encodeURIComponent(id) + '/retry', { method: 'POST', body: '{}' });
      location.hash = '#/runs/' + encodeURIComponent(r.run_id);
    } catch (e) { msg.textContent = 'retry refused: ' + e.message; retry.disabled = false; }
  };

  /* The events stream keeps the page live: each event refreshes the run
   * (at most every 300 ms); a run whose events are no longer kept (read
   * back from PostgreSQL) shows none. */
  let pending = null;
  const refreshSoon = () => { if (!pending) pending = setTimeout(() => { pending = null; load().catch(failed); }, 300); };
  const addEvent = (kind, ev) => {
    if (ev.plan && ev.plan.module_mlir) /* PLANNED / REPLANNED: the module that runs (one function per device) */
      put(mod, el('details', {}, el('summary', {}, `Partitioned module (loom dialect, plan v${ev.plan.version}): what runs where`),
        el('pre', { id: 'run-module' }, ev.plan.module_mlir)));
    $('tbody', events).append(el('tr', { 'data-kind': eventWord(ev.kind) },
      el('td', { class: 'num' }, '+' + fmtMs(num(ev.time_unix_ms) - num(run ? run.submitted_unix_ms : ev.time_unix_ms))),
      el('td', {}, eventWord(ev.kind)), el('td', {}, ev.step_id), el('td', {}, ev.worker_id),
      el('td', {}, ev.error ? ev.error.message : ev.message)));
    refreshSoon();
  };
  aborter = new AbortController();
  const signal = aborter.signal;
  return (async () => {
    try {
      await Promise.all([load(), health()]);
      if (gen === mine) loaded();
    } catch (e) { if (gen === mine) failed(e); return; }
    runEvents(id, addEvent, signal).then(status => {
      if (status === 404 && !$('tbody', events).children.length)
        $('tbody', events).append(el('tr', {}, el('td', { colspan: 5, class: 'muted' }, 'events of this run are no longer kept in memory')));
      if (!signal.aborted) load().then(loaded, failed);
    }).catch(e => { if (!signal.aborted) failed(e); });
    /* a run can be cancelled elsewhere: check now and then too */
    if (gen === mine) timer = setInterval(() => { if (run && ACTIVE.has(word(run.state))) load().catch(failed); }, 5000);
  })();
}

/* ---- fleet --------------------------------------------------------------- */

const series = new Map(); /* worker id -> [{t, running, queued}], sampled while this page is open */
const SAMPLES = 150;

function spark(points, slots) {
  const W = 150, H = 28, n = SAMPLES;
  const s = svg('svg', { class: 'spark', viewBox: `0 0 ${W} ${H}`, width: W, height: H });
  const top = Math.max(1, slots, ...points.map(p => p.running + p.queued));
  const line = (key, cls) => {
    const pts = points.map((p, i) => `${(W * (n - points.length + i)) / (n - 1)},${H - 2 - ((H - 4) * p[key]) / top}`).join(' ');
    s.append(svg('polyline', { points: pts, class: cls }));
  };
  s.append(svg('rect', { x: 0, y: 0, width: W, height: H, class: 'spark-bg' }));
  if (points.length) { line('queued', 'spark-queued'); line('running', 'spark-running'); }
  s.append(svg('title', {}, `running (blue) and queued (grey), last ${points.length} samples, 2 s apart`));
  return s;
}

function pageFleet() {
  const root = startPage('fleet');
  const kpis = el('p', { class: 'kpis', id: 'fleet-kpis' });
  const table = el('table', { id: 'workers' }, el('thead', {}, el('tr', {},
    ['worker', 'state', 'device', 'slots', 'busy', 'queued', 'utilisation', 'busy / queued (last 5 min)', 'free memory', 'models', 'done', 'failed', 'heartbeat', '$/h'].map(h => el('th', {}, h)))), el('tbody'));
  root.append(el('h2', {}, 'Fleet'), kpis, el('p', { class: 'muted' },
    'Busy = tasks executing now; queued = tasks sent to the worker that have not started. Utilisation = busy / slots.'),
    el('div', { class: 'scroll' }, table));
  return every(2000, async () => {
    const [rep] = await Promise.all([api('/v1/workers?include_lost=true'), health()]);
    const now = Date.now();
    let slots = 0, busy = 0, queued = 0, ready = 0;
    $('tbody', table).replaceChildren(...rep.workers.map(w => {
      const p = w.profile || {}, st = word(w.state), nslots = num(p.task_slots) || 0;
      const running = num(w.running_tasks) || 0, q = num(w.queued_tasks) || 0;
      if (st !== 'lost') { slots += nslots; busy += running; queued += q; ready += st === 'ready'; }
      const pts = series.get(w.worker_id) || [];
      pts.push({ t: now, running, queued: q });
      while (pts.length > SAMPLES) pts.shift();
      series.set(w.worker_id, pts);
      const util = nslots ? running / nslots : 0;
      const age = num(w.last_heartbeat_unix_ms) > 0 ? Math.max(0, (now - num(w.last_heartbeat_unix_ms)) / 1000) : NaN;
      return el('tr', { 'data-worker': w.worker_id, 'data-state': st },
        el('td', {}, w.worker_id), el('td', {}, stateBadge(st)),
        el('td', { class: 'dev-' + (device(p.kind) || 'none') }, device(p.kind) + (p.model_name ? ' · ' + p.model_name : '')),
        el('td', { class: 'num' }, nslots), el('td', { class: 'num busy' }, running), el('td', { class: 'num queued' }, q),
        el('td', { class: 'util' }, el('span', { class: 'meter' }, el('span', { style: `width:${Math.min(100, 100 * util)}%` })), ' ', pct(util)),
        el('td', {}, spark(pts, nslots)),
        el('td', { class: 'num' }, fmtBytes(w.free_memory_bytes)), el('td', {}, (w.loaded_models || []).join(', ')),
        el('td', { class: 'num' }, w.tasks_done), el('td', { class: 'num' }, w.tasks_failed),
        el('td', { class: 'num' }, isNaN(age) ? '' : age.toFixed(0) + ' s ago'),
        el('td', { class: 'num' }, num(p.price_per_hour_usd) > 0 ? fmtCost(p.price_per_hour_usd) : ''));
    }));
    if (!rep.workers.length) $('tbody', table).append(el('tr', {}, el('td', { colspan: 14, class: 'empty' }, 'no workers registered')));
    kpis.replaceChildren(el('b', { id: 'fleet-ready' }, ready), ' ready workers · ', el('b', { id: 'fleet-slots' }, slots), ' slots · ',
      el('b', { id: 'fleet-busy' }, busy), ' busy · ', el('b', { id: 'fleet-queued' }, queued), ' queued · utilisation ',
      el('b', { id: 'fleet-util' }, pct(slots ? busy / slots : 0)));
  });
}

/* ---- history (PostgreSQL views) ------------------------------------------ */

function lineChart(id, points, yMax, fmt) {
  const s = svg('svg', { id, class: 'chart', viewBox: '0 0 600 160', preserveAspectRatio: 'none' });
  if (!points.length) { s.append(svg('text', { x: 10, y: 80 }, 'no data yet')); return s; }
  const xs = [...new Set(points.map(p => p.x))].sort();
  const names = [...new Set(points.map(p => p.s))];
  const W = 600, H = 160, L = 40, B = 20, T = 10;
  const max = yMax || Math.max(...points.map(p => p.y), 1e-9);
  const X = i => L + (xs.length === 1 ? (W - L) / 2 : (i * (W - L - 10)) / (xs.length - 1));
  const Y = v => H - B - (v / max) * (H - B - T);
  s.append(svg('line', { x1: L, y1: H - B, x2: W, y2: H - B, stroke: '#ccc' }));
  s.append(svg('text', { x: 2, y: T + 8, 'font-size': 10 }, fmt(max)));
  const palette = ['#4e79a7', '#e15759', '#59a14f', '#f28e2b', '#b07aa1', '#76b7b2'];
  names.forEach((name, si) => {
    const pts = points.filter(p => p.s === name).map(p => [X(xs.indexOf(p.x)), Y(p.y)]);
    const color = palette[si % palette.length];
    s.append(svg('polyline', { points: pts.map(p => p.join(',')).join(' '), fill: 'none', stroke: color, 'stroke-width': 2 }));
    s.append(svg('text', { x: L + 5 + si * 110, y: T + 8, 'font-size': 10, fill: color }, name));
  });
  return s;
}

function pageHistory() {
  const root = startPage('history');
  return every(10000, async () => {
    await health();
    let rows;
    try {
      rows = await Promise.all(['sla', 'sla_hourly', 'cost_workflow', 'cost_hourly', 'cost_model_error'].map(v => api('/api/' + v)));
    } catch (e) {
      if (e.status !== 503) throw e;
      root.replaceChildren(el('h2', {}, 'SLA & cost history'), el('p', { id: 'no-history' },
        'History needs PostgreSQL: start loomd with --db. Live runs and workers are on the other pages.'));
      return;
    }
    const [sla, slaHourly, cost, costHourly, model] = rows;
    const table = (id, heads, data, cells) => el('table', { id }, el('thead', {}, el('tr', {}, heads.map(h => el('th', {}, h)))),
      el('tbody', {}, data.map(r => el('tr', { 'data-key': r.workflow || r.op || '' }, cells(r).map(c => c instanceof HTMLTableCellElement ? c : el('td', {}, c))))));
    const tdn = v => el('td', { class: 'num' }, v);
    root.replaceChildren(el('h2', {}, 'SLA & cost history'),
      el('h3', {}, 'SLA attainment by workflow'),
      table('sla', ['workflow', 'runs', 'met', 'missed', 'attainment'], sla, s => [el('a', { href: '#/runs?workflow=' + encodeURIComponent(s.workflow) }, s.workflow), tdn(s.runs), tdn(s.met), tdn(s.missed), tdn(pct(s.attainment))]),
      lineChart('sla-chart', slaHourly.map(h => ({ s: h.workflow, x: h.hour, y: h.attainment })), 1, pct),
      el('h3', {}, 'Cost by workflow'),
      table('cost', ['workflow', 'runs', 'total', 'per run'], cost, c => [c.workflow, tdn(c.runs), tdn(fmtCost(c.total_cost)), tdn(fmtCost(c.avg_cost_per_run))]),
      lineChart('cost-chart', costHourly.map(h => ({ s: h.workflow, x: h.hour, y: h.cost })), 0, fmtCost),
      el('h3', {}, 'Cost model: predicted vs actual step latency'),
      table('model-error', ['op', 'device', 'tasks', 'mean |error|', 'bias'], model, m => [m.op, m.device_class, tdn(m.tasks), tdn(pct(m.mean_abs_rel_error)), tdn(pct(m.bias))]));
  });
}

/* ---- routing --------------------------------------------------------------- */

function route() {
  const h = location.hash || '#/runs';
  const [path, qs] = h.slice(1).split('?');
  if (path.startsWith('/runs/')) return pageRun(decodeURIComponent(path.slice(6)));
  if (path === '/fleet') return pageFleet();
  if (path === '/history') return pageHistory();
  return pageRuns(new URLSearchParams(qs || ''));
}
window.addEventListener('hashchange', route);

/* The run states, as the API defines them (its OpenAPI document). */
async function vocabulary() {
  if (RUN_STATE_NAMES.length) return;
  try {
    const doc = await api('/v1/openapi.json');
    RUN_STATE_NAMES = doc.components.schemas.RunState.enum.filter(n => !/UNSPECIFIED/.test(n));
  } catch (e) { if (e.status !== 401) failed(e); }
}

vocabulary().then(route);
