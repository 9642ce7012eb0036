// Pulse city dashboard: live zone tiles from the SSE live view, and the
// charts and table of the selected zone over a time range: stored final
// results from the results API, plus the open windows while the range
// trails the live event time. Below, the raw events of the stream over
// the same range from the history API (events.js), which a click on a
// window (a table row or a chart point) narrows to that window. Plain JS
// modules, no build step; uPlot is loaded from vendor/.
import * as range from './range.js';
import { makeEvents } from './events.js';
import { merge } from './series.js';
import * as sources from './sources.js';
import { makeCharts } from './chart.js';
import { makeTable } from './table.js';
import { makeTiles } from './tiles.js';
import { startWatermark } from './watermark.js';

const STALE_MS = 10 * 1000; // no live event for this long: reconnect
const REFRESH_MS = 60 * 1000; // how often a trailing range reads new finals
// A refresh reads again the finals of this long before the newest one it
// has, so that a final updated by a late event shows.
const REFRESH_BACK_MS = 5 * 60 * 1000;
const $ = (id) => document.getElementById(id);

// The metrics a tile and the chart show; band() returns a CSS class
// suffix and a word for the value.
const METRICS = [
  { field: 'speed_kmh', cls: 'speed', label: 'Traffic speed', unit: 'km/h', digits: 0, color: '#5794f2',
    band: (v) => (v < 20 ? ['bad', 'congested'] : v < 40 ? ['warn', 'slow'] : ['good', 'free flow']) },
  { field: 'pm25', cls: 'pm25', label: 'PM2.5', unit: 'µg/m³', digits: 1, color: '#ff9830',
    band: (v) => (v <= 15 ? ['good', 'good'] : v <= 35 ? ['warn', 'moderate'] : v <= 55 ? ['poor', 'poor'] : ['bad', 'unhealthy']) },
  { field: 'temp_c', cls: 'temp', label: 'Temperature', unit: '°C', digits: 1, color: '#b877d9',
    band: (v) => (v < 0 ? ['cold', 'freezing'] : v < 30 ? ['mild', 'mild'] : v < 35 ? ['warn', 'hot'] : ['bad', 'very hot']) },
];

const url = range.parse(location.search);
const state = {
  pipeline: 'city',
  output: 'zone_1m',
  groupBy: 'zone',
  stream: 'city', // the archived stream the pipeline reads: the raw events panel's
  windows: '1-minute windows',
  source: sources.results, // where the panel's stored rows come from
  range: url.range,
  rangeNote: url.note, // what was wrong with the link's range
  selected: new URLSearchParams(location.search).get('zone'),
  stored: [], // stored rows of the selected zone, oldest first
  load: null, // the load in flight: {ctl}
  loading: false,
  error: null,
  pages: 0,
  truncated: false,
  live: [], // open-window rows of the selected zone
  shownRows: [], // the rows the charts and the table show, oldest first
  rows: new Map(), // every open window of the output, by rowId
  anchor: null, // latest window end seen (ms): "now" in event time
  lastEvent: 0,
  es: null,
};

const fmt = (v, digits) => (v == null || !Number.isFinite(v) ? '–' : v.toFixed(digits));
const keyOf = (row) => row.key[state.groupBy] ?? Object.values(row.key)[0];
const startOf = (row) => Date.parse(row.window_start);
// A live row is identified by its key and window start; the server sends
// both, in the same member order, with every change to the row.
const rowId = (row) => JSON.stringify(row.key) + '|' + row.window_start;
const end = () => state.anchor ?? Date.now();
const shown = () => range.bounds(state.range, end());

const tiles = makeTiles($('tiles'), METRICS, fmt, select);
const draw = makeCharts($('chart'), METRICS, shown, pickTime);
const table = makeTable($('rows'), METRICS, pick);
const events = makeEvents($('events'), { onURL: writeURL });

// pick shows the raw events of a window of the selected zone: its key and
// [window_start, window_end).
function pick(row) {
  events.drill(state.groupBy, keyOf(row), startOf(row), Date.parse(row.window_end));
}

// pickTime picks the window charted at ms.
function pickTime(ms) {
  const row = state.shownRows.find((r) => state.source.time(r) === ms);
  if (row) pick(row);
}

// ---- connection -------------------------------------------------------

function setStatus(s) {
  const el = $('status');
  if (el.dataset.state === s) return;
  el.dataset.state = s;
  el.className = 'status ' + s;
  $('status-text').textContent = s;
}

function connect() {
  if (state.es) state.es.close();
  const es = new EventSource(`/v1/pipelines/${encodeURIComponent(state.pipeline)}/live?output=${encodeURIComponent(state.output)}`);
  state.es = es;
  state.lastEvent = Date.now();
  es.addEventListener('live', (e) => {
    state.lastEvent = Date.now();
    setStatus('live');
    try {
      onLive(JSON.parse(e.data));
    } catch (err) {
      console.warn('pulse: bad live event', err);
    }
  });
  es.onerror = () => {
    setStatus('reconnecting');
    // EventSource retries by itself unless the server refused the stream.
    if (es.readyState === EventSource.CLOSED && state.es === es) setTimeout(connect, 3000);
  };
}

// A stream that stays open but goes quiet (a proxy, a sleeping laptop)
// is reopened.
setInterval(() => {
  if (state.es && Date.now() - state.lastEvent > STALE_MS) {
    setStatus('reconnecting');
    connect();
  }
}, 1000);

// ---- live updates -----------------------------------------------------

// apply brings state.rows up to date: a snapshot replaces them; a delta
// adds new rows, merges the changed fields of known ones (null: the
// field is gone) and drops the removed ones.
function apply(msg) {
  if (msg.snapshot) state.rows.clear();
  for (const row of msg.results || []) {
    const id = rowId(row);
    const old = state.rows.get(id);
    if (!old) {
      state.rows.set(id, row);
      continue;
    }
    for (const [f, v] of Object.entries(row)) {
      if (v === null) delete old[f];
      else old[f] = v;
    }
  }
  for (const gone of msg.removed || []) state.rows.delete(rowId(gone));
}

function onLive(msg) {
  apply(msg);
  $('ingest-rate').textContent = Math.round(msg.ingest_rate || 0).toLocaleString('en-US');
  if (msg.watermark == null) {
    $('watermark').textContent = '–';
    $('watermark-lag').textContent = 'no events yet';
  } else {
    $('watermark').textContent = clockSecs(msg.watermark);
    $('watermark-lag').textContent = 'lag ' + duration(msg.time - msg.watermark);
  }

  // The latest open window of each zone, and every open window of the
  // selected one (there can be two around a minute boundary).
  const rows = [...state.rows.values()];
  const latest = new Map();
  const hadAnchor = state.anchor != null;
  for (const row of rows) {
    const zone = keyOf(row);
    if (zone == null) continue;
    const prev = latest.get(zone);
    if (!prev || startOf(row) > startOf(prev)) latest.set(zone, row);
    const e = Date.parse(row.window_end);
    if (state.anchor == null || e > state.anchor) state.anchor = e;
  }
  const n = tiles.render(latest);
  $('empty').hidden = n > 0;
  $('zone-count').textContent = String(n);
  // The first load of a trailing range guessed "now" from the clock:
  // read it again now that event time is known.
  if (!hadAnchor && state.anchor != null && range.follows(state.range)) {
    if (state.selected != null) reload();
    events.range(shown(), true);
  }
  if (state.selected == null && n > 0) select(tiles.zones()[0]);

  // A window that left the live view has closed: its final is coming.
  const mine = rows.filter((r) => keyOf(r) === state.selected);
  const now = new Set(mine.map(startOf));
  const closed = state.live.some((r) => !now.has(startOf(r)));
  state.live = mine;
  if (range.follows(state.range)) {
    if (closed) setTimeout(refresh, 1500);
    updatePanel();
  }
}

const pad = (n) => String(n).padStart(2, '0');
function clockSecs(ms) {
  const d = new Date(ms);
  return pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
}

function duration(ms) {
  if (ms < 0) ms = 0;
  if (ms < 60000) return (ms / 1000).toFixed(1) + ' s';
  const m = Math.floor(ms / 60000);
  return m < 60 ? m + ' min ' + Math.floor((ms % 60000) / 1000) + ' s' : Math.floor(m / 60) + ' h ' + (m % 60) + ' min';
}

// ---- selection and range ----------------------------------------------

function select(zone) {
  if (state.selected === zone) return;
  state.selected = zone;
  state.live = [...state.rows.values()].filter((r) => keyOf(r) === zone);
  tiles.mark(zone);
  table.reset();
  writeURL();
  reload();
}

function writeURL() {
  history.replaceState(null, '', events.write(range.write(location.search, state.range, state.selected)));
}

function setRange(r) {
  state.range = r;
  state.rangeNote = null;
  table.reset();
  events.whole();
  writeURL();
  renderPicker();
  reload();
  events.range(shown(), range.follows(r));
}

function renderPicker() {
  const r = state.range;
  const active = r.kind === 'custom' ? 'custom' : r.id;
  $('range').dataset.active = active;
  for (const b of $('range-presets').querySelectorAll('button')) {
    b.classList.toggle('active', b.dataset.range === active);
    b.setAttribute('aria-pressed', String(b.dataset.range === active));
  }
  if (r.kind === 'custom') {
    $('range-from').value = range.localInput(r.from);
    $('range-to').value = range.localInput(r.to);
    $('range-custom').hidden = false;
  }
  const note = $('range-note');
  note.hidden = state.rangeNote == null;
  note.textContent = state.rangeNote ?? '';
}

function makePicker() {
  const box = $('range-presets');
  for (const p of [...range.PRESETS, { id: 'custom', label: 'Custom' }]) {
    const b = document.createElement('button');
    b.type = 'button';
    b.dataset.range = p.id;
    b.textContent = p.label;
    b.title = p.long ?? 'a fixed range of stored results';
    b.addEventListener('click', () => {
      if (p.id !== 'custom') {
        $('range-custom').hidden = true;
        setRange({ kind: 'preset', id: p.id });
        return;
      }
      // Custom opens the from–to inputs, filled with the range shown.
      const [from, to] = shown();
      $('range-from').value = range.localInput(from);
      $('range-to').value = range.localInput(to);
      $('range-custom').hidden = false;
      $('range-from').focus();
    });
    box.appendChild(b);
  }
  $('range').addEventListener('submit', (e) => {
    e.preventDefault();
    const c = range.custom($('range-from').value, $('range-to').value);
    if (c.error) {
      state.rangeNote = c.error;
      renderPicker();
      return;
    }
    setRange(c.range);
  });
}

// ---- stored rows --------------------------------------------------------

// reload reads the stored rows of the selected zone over the whole range,
// dropping a load still in flight.
async function reload() {
  if (state.load) state.load.ctl.abort();
  state.load = null;
  Object.assign(state, { stored: [], error: null, pages: 0, truncated: false, loading: state.selected != null });
  updatePanel();
  if (state.selected == null) return;
  const zone = state.selected;
  const [from, to] = shown();
  const load = { ctl: new AbortController() };
  state.load = load;
  try {
    const res = await state.source.load({
      pipeline: state.pipeline, output: state.output, key: zone, from,
      to: range.follows(state.range) ? null : to, // a trailing range also takes finals newer than its guess of now
      signal: load.ctl.signal,
    });
    if (state.load !== load) return; // another load replaced this one
    Object.assign(state, { stored: res.rows, pages: res.pages, truncated: res.truncated });
  } catch (err) {
    if (state.load !== load) return;
    state.error = `could not load the stored results of ${zone}: ${err.message}`;
  }
  state.load = null;
  state.loading = false;
  updatePanel();
}

// refresh reads the finals a trailing range gained since its last read.
async function refresh() {
  if (!range.follows(state.range) || state.selected == null || state.load) return;
  const src = state.source;
  const [lo] = shown();
  const stored = state.stored;
  const since = Math.max(lo, stored.length > 0 ? src.time(stored[stored.length - 1]) - REFRESH_BACK_MS : lo);
  const load = { ctl: new AbortController() };
  state.load = load;
  try {
    const res = await src.load({ pipeline: state.pipeline, output: state.output, key: state.selected, from: since, signal: load.ctl.signal });
    if (state.load !== load) return;
    const keep = stored.filter((r) => src.time(r) >= lo && src.time(r) < since);
    state.stored = keep.concat(res.rows);
    state.error = null;
  } catch (err) {
    if (state.load !== load) return;
    state.error = `could not load the latest stored results of ${state.selected}: ${err.message}`;
  }
  state.load = null;
  updatePanel();
}
setInterval(refresh, REFRESH_MS);

// ---- the panel --------------------------------------------------------

function updatePanel() {
  const follows = range.follows(state.range);
  const [from, to] = shown();
  const time = state.source.time;
  const rows = merge(state.stored, follows ? state.live : [], time, from, to);
  state.shownRows = rows;
  const chart = $('chart');
  draw(rows, time);
  table.show(rows, time, fmt);
  chart.dataset.first = rows.length > 0 ? range.iso(time(rows[0])) : '';
  chart.dataset.last = rows.length > 0 ? range.iso(time(rows[rows.length - 1])) : '';
  chart.dataset.pages = String(state.pages);
  chart.dataset.state = state.loading ? 'loading' : state.error ? 'error' : rows.length === 0 ? 'empty' : 'ready';
  chart.hidden = rows.length === 0;

  $('chart-title').textContent = state.selected ?? 'No zone selected';
  $('range-sub').textContent = range.describe(state.range) + ' · ' + state.windows +
    (follows ? ' · live' : ' · stored results · live updates paused');
  $('range-sub').classList.toggle('paused', !follows);

  const err = $('chart-error');
  err.hidden = state.error == null;
  err.textContent = state.error ?? '';
  const status = $('chart-status');
  status.hidden = !state.loading && !state.truncated;
  status.textContent = state.loading ? 'loading stored results…' :
    state.truncated ? `showing the first ${state.stored.length.toLocaleString('en-US')} stored rows of this range: pick a shorter one to see the rest` : '';
  const empty = $('chart-empty');
  empty.hidden = rows.length > 0 || state.loading || state.error != null;
  empty.textContent = state.selected == null ? 'Select a zone to chart it.' : 'No stored results in this range.';
}

// ---- start ------------------------------------------------------------

async function discover() {
  // Prefer the city pipeline's per-zone output; fall back to the defaults.
  try {
    const res = await fetch('/v1/pipelines');
    const { pipelines = [] } = await res.json();
    const p = pipelines.find((x) => x.name === 'city') || pipelines[0];
    const o = p && ((p.outputs || []).find((x) => (x.group_by || []).join() === 'zone') || p.outputs[0]);
    if (p && o) {
      Object.assign(state, { pipeline: p.name, output: o.name, groupBy: (o.group_by || [])[0] || 'zone', windows: o.window + ' windows',
        stream: (p.topics || [])[0] || p.name });
      $('subtitle').textContent = `${p.name} · ${o.name} · ${o.window}`;
    }
  } catch (err) {
    console.warn('pulse: listing pipelines failed, using defaults', err);
  }
}

makePicker();
renderPicker();
updatePanel();
discover().then(() => {
  // The filters offered: the sensor (the city stream's key), the
  // output's group field and the kind, each when the stream has it.
  events.configure({ stream: state.stream, filterCols: ['sensor_id', state.groupBy, 'kind'] });
  events.range(shown(), range.follows(state.range));
  if (state.selected != null) {
    tiles.mark(state.selected);
    reload();
  }
  writeURL();
  connect();
  startWatermark(state.pipeline, $('watermark-held'), duration);
});
