// Loom dashboard: reads /api/* (rows of the PostgreSQL views) and
// /api/summary + /healthz (live counters), refreshes every 5 s. No
// dependencies; charts and the DAG are plain SVG.
'use strict';
const COLORS = { cpu: '#4e79a7', gpu: '#59a14f', npu: '#f28e2b' };
let selectedRun = null;

// loomd in secure mode answers 401 without a bearer token (docs/SECURITY.md):
// ask for one once, keep it in this browser's localStorage, send it on every
// request; a token that stops working (expired, rotated) is asked for again.
let token = localStorage.getItem('loom-token') || '';
async function get(path) {
  for (let tries = 0; ; tries++) {
    const used = token;
    const headers = used ? { Authorization: 'Bearer ' + used } : {};
    const r = await fetch(path, { cache: 'no-store', headers });
    if (r.status === 401 && token !== used) continue; // another request asked meanwhile
    if (r.status === 401 && tries < 2) {
      const t = window.prompt('This loomd needs a token (loom keygen --token ...):', '');
      if (t === null) throw new Error(path + ': 401 (no token given)');
      token = t.trim();
      localStorage.setItem('loom-token', token);
      continue;
    }
    if (!r.ok && r.status !== 503) throw new Error(path + ': ' + r.status);
    return r.json();
  }
}
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(k == null ? '' : String(k)));
  return e;
}
function svg(tag, attrs, text) {
  const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text != null) e.textContent = text;
  return e;
}
function num(v, digits) { return v == null ? '' : Number(v).toFixed(digits); }
function pct(v) { return v == null ? '' : (100 * v).toFixed(1) + '%'; }
function time(t) { return t ? new Date(t).toISOString().replace('T', ' ').slice(0, 19) : ''; }
function fill(id, rows, cells, onRow) {
  const tb = document.querySelector('#' + id + ' tbody');
  tb.replaceChildren(...rows.map(r => {
    const tr = el('tr');
    for (const c of cells(r)) tr.append(c instanceof Node ? c : el('td', {}, c));
    if (onRow) onRow(tr, r);
    return tr;
  }));
}
const td = (v, cls) => el('td', cls ? { class: cls } : {}, v);

function lineChart(id, points, yMax, fmt) {
  const s = document.getElementById(id);
  s.replaceChildren();
  if (!points.length) { s.append(svg('text', { x: 10, y: 80 }, 'no data yet')); return; }
  const xs = [...new Set(points.map(p => p.x))].sort();
  const series = [...new Set(points.map(p => p.s))];
  const W = 600, H = 160, L = 40, B = 20, T = 10;
  const max = yMax || Math.max(...points.map(p => p.y), 1e-9);
  const X = i => L + (xs.length === 1 ? (W - L) / 2 : i * (W - L - 10) / (xs.length - 1));
  const Y = v => H - B - (v / max) * (H - B - T);
  s.append(svg('line', { x1: L, y1: H - B, x2: W, y2: H - B, stroke: '#ccc' }));
  s.append(svg('text', { x: 2, y: T + 8, 'font-size': 10 }, fmt(max)));
  s.append(svg('text', { x: 2, y: H - B, 'font-size': 10 }, fmt(0)));
  const palette = ['#4e79a7', '#e15759', '#59a14f', '#f28e2b', '#b07aa1', '#76b7b2'];
  series.forEach((name, si) => {
    const pts = points.filter(p => p.s === name).map(p => [X(xs.indexOf(p.x)), Y(p.y)]);
    const color = palette[si % palette.length];
    s.append(svg('polyline', { points: pts.map(p => p.join(',')).join(' '), fill: 'none', stroke: color, 'stroke-width': 2 }));
    for (const [x, y] of pts) s.append(svg('circle', { cx: x, cy: y, r: 3, fill: color }));
    s.append(svg('text', { x: L + 5 + si * 110, y: T + 8, 'font-size': 10, fill: color }, name));
  });
  xs.forEach((x, i) => { if (i === 0 || i === xs.length - 1) s.append(svg('text', { x: X(i) - 20, y: H - 4, 'font-size': 9 }, time(x).slice(5, 16))); });
}

function drawDag(steps) {
  const s = document.getElementById('dag');
  s.replaceChildren();
  if (!steps.length) { s.append(svg('text', { x: 10, y: 30 }, 'no steps recorded')); return; }
  const byId = new Map(steps.map(t => [t.task_id, t]));
  const needs = t => { try { return (JSON.parse(t.needs || '[]') || []).filter(n => byId.has(n)); } catch (e) { return []; } };
  const depth = new Map();
  const d = (t, seen) => {
    if (depth.has(t.task_id)) return depth.get(t.task_id);
    if (seen.has(t.task_id)) return 0;
    seen.add(t.task_id);
    const v = Math.max(-1, ...needs(t).map(n => d(byId.get(n), seen))) + 1;
    depth.set(t.task_id, v);
    return v;
  };
  if (steps.some(t => needs(t).length)) steps.forEach(t => d(t, new Set()));
  else steps.forEach((t, i) => depth.set(t.task_id, i)); // no dependency data: start order
  const layers = [];
  steps.forEach(t => { const k = depth.get(t.task_id); (layers[k] = layers[k] || []).push(t); });
  const NW = 150, NH = 46, GX = 60, GY = 16;
  const pos = new Map();
  layers.forEach((layer, i) => layer.forEach((t, j) => pos.set(t.task_id, [10 + i * (NW + GX), 10 + j * (NH + GY)])));
  const rows = Math.max(...layers.map(l => l.length));
  s.setAttribute('viewBox', `0 0 ${Math.max(900, layers.length * (NW + GX) + 20)} ${rows * (NH + GY) + 20}`);
  s.style.height = (rows * (NH + GY) + 20) + 'px';
  for (const t of steps) for (const n of needs(t)) {
    const [x1, y1] = pos.get(n), [x2, y2] = pos.get(t.task_id);
    s.append(svg('line', { x1: x1 + NW, y1: y1 + NH / 2, x2: x2, y2: y2 + NH / 2, stroke: '#999', 'stroke-width': 1.5 }));
  }
  for (const t of steps) {
    const [x, y] = pos.get(t.task_id);
    const g = svg('g', { class: 'node', 'data-task': t.task_id, 'data-device': t.device_class || '' });
    g.append(svg('rect', { x, y, width: NW, height: NH, rx: 6, fill: COLORS[t.device_class] || '#bbb', opacity: t.state === 'succeeded' ? 1 : 0.55 }));
    g.append(svg('text', { x: x + 8, y: y + 18, fill: '#fff', 'font-weight': 600, 'font-size': 12 }, t.task_id));
    const timing = t.actual_ms != null ? num(t.actual_ms, 0) + ' ms' : t.state;
    g.append(svg('text', { x: x + 8, y: y + 36, fill: '#fff', 'font-size': 11 }, (t.device_class || '?') + ' · ' + timing));
    g.append(svg('title', {}, `${t.task_id} (${t.op}) on ${t.worker_id || '?'}: ${t.reason || ''}`));
    s.append(g);
  }
}

async function showRun(id) {
  selectedRun = id;
  document.getElementById('run-id').textContent = id;
  document.querySelectorAll('#runs tbody tr').forEach(tr => tr.classList.toggle('sel', tr.dataset.run === id));
  const steps = await get('/api/run_steps?run=' + encodeURIComponent(id));
  drawDag(steps);
  const t0 = Math.min(...steps.filter(t => t.started_at).map(t => Date.parse(t.started_at)));
  const t1 = Math.max(...steps.filter(t => t.finished_at).map(t => Date.parse(t.finished_at)), t0 + 1);
  fill('steps', steps, t => {
    const bar = el('td');
    if (t.started_at) {
      const a = Date.parse(t.started_at), b = t.finished_at ? Date.parse(t.finished_at) : t1;
      bar.append(el('span', { class: 'bar', style: `margin-left:${(a - t0) / (t1 - t0) * 200}px;width:${Math.max(2, (b - a) / (t1 - t0) * 200)}px;background:${COLORS[t.device_class] || '#bbb'}` }));
    }
    return [t.task_id, t.op, td(t.state, 'state-' + t.state), td(t.device_class || '', 'dev-' + (t.device_class || 'none')),
            t.worker_id || '', t.reason || '', td(num(t.predicted_ms, 0), 'num'), td(num(t.actual_ms, 0), 'num'), bar, td(t.attempts, 'num')];
  });
}

async function refresh() {
  try {
    const [summary, health] = await Promise.all([get('/api/summary'), get('/healthz')]);
    const hb = document.getElementById('health');
    hb.textContent = health.status + (health.reason ? ': ' + health.reason : '');
    hb.className = 'badge ' + health.status;
    document.getElementById('live-summary').textContent =
      `${summary.runs_active} active · ${summary.task_queue_depth} tasks queued · ${summary.tasks_dispatched} dispatched`;
    const [fleet, util, live, recent, sla, slaHourly, cost, costHourly, model] = await Promise.all(
      ['fleet', 'utilisation', 'live_runs', 'recent_runs', 'sla', 'sla_hourly', 'cost_workflow', 'cost_hourly', 'cost_model_error']
        .map(q => get('/api/' + q)));
    if (!Array.isArray(fleet)) throw new Error(fleet.error || 'no database');
    document.getElementById('fleet-workers').textContent = fleet.length;
    document.getElementById('fleet-slots').textContent = fleet.reduce((a, w) => a + w.slots, 0);
    document.getElementById('fleet-busy').textContent = fleet.reduce((a, w) => a + w.busy_slots, 0);
    fill('fleet', fleet, w => [w.id, td(w.device_class, 'dev-' + w.device_class), w.device_name, td(w.slots, 'num'), td(w.busy_slots, 'num'), w.state, time(w.last_seen)]);
    fill('utilisation', util, u => [td(u.device_class, 'dev-' + u.device_class), td(u.workers, 'num'), td(u.slots, 'num'), td(u.busy_slots, 'num'), td(pct(u.utilisation), 'num')]);
    document.getElementById('runs-live').textContent = live.length;
    document.getElementById('runs-recent').textContent = recent.length;
    document.getElementById('runs-failed').textContent = recent.filter(r => r.state === 'failed').length;
    fill('runs', recent, r => [r.id, r.workflow, td(r.state, 'state-' + r.state), time(r.submitted_at), td(num(r.latency_ms, 0), 'num'), td(num(r.sla_ms, 0), 'num'),
      td(r.sla_met == null ? '' : r.sla_met ? 'met' : 'missed', r.sla_met == null ? '' : r.sla_met ? 'met' : 'missed'), td(`${r.n_done}/${r.n_tasks}`, 'num'), td(num(r.cost, 4), 'num')],
      (tr, r) => { tr.dataset.run = r.id; tr.onclick = () => showRun(r.id); });
    fill('sla', sla, s => [s.workflow, td(s.runs, 'num'), td(s.met, 'num met'), td(s.missed, 'num missed'), td(pct(s.attainment), 'num')],
      (tr, s) => { tr.dataset.workflow = s.workflow; });
    lineChart('sla-chart', slaHourly.map(h => ({ s: h.workflow, x: h.hour, y: h.attainment })), 1, v => pct(v));
    fill('cost', cost, c => [c.workflow, td(c.runs, 'num'), td(num(c.total_cost, 4), 'num'), td(num(c.avg_cost_per_run, 4), 'num')]);
    lineChart('cost-chart', costHourly.map(h => ({ s: h.workflow, x: h.hour, y: h.cost })), 0, v => '$' + num(v, 3));
    fill('model-error', model, m => [m.op, td(m.device_class, 'dev-' + m.device_class), td(m.tasks, 'num'), td(pct(m.mean_abs_rel_error), 'num'), td(pct(m.bias), 'num')]);
    const pick = selectedRun && recent.some(r => r.id === selectedRun) ? selectedRun : recent.length ? recent[0].id : null;
    if (pick) await showRun(pick);
    document.getElementById('updated').textContent = 'updated ' + new Date().toISOString().slice(11, 19) + ' UTC';
    document.body.dataset.loaded = 'yes';
  } catch (e) {
    document.getElementById('updated').textContent = 'error: ' + e.message;
    document.body.dataset.loaded = 'error';
  }
}
refresh();
setInterval(refresh, 5000);
