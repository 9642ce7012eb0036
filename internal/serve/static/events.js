// The raw events panel: the archived events of the dashboard's stream
// in a time range, from the history API (GET /v1/streams/{s}/history,
// docs/api.md). The API pages forward in archive order (hour by hour,
// partition by partition), so the panel shows the first page and "Load
// more" appends the next one (the answer's `next` token as after=).
// Filters are the API's where=COLUMN=VALUE; a drill-down from a result
// window narrows the range to that window. The filters, the window and
// the page size live in the page's URL with the range picker's range.
import { iso, localSeconds, localTime } from './range.js';

// DEFAULT_LIMIT is how many events a page reads unless the URL says
// otherwise (events_limit=N); MAX_LIMIT is the most the API answers, also
// what a download link asks for.
export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 100000;

// The URL parameters of the panel.
const P = { where: 'where', from: 'events_from', to: 'events_to', limit: 'events_limit' };

// parse reads the panel's state from a URL's query string: the filters
// (where=COLUMN=VALUE, repeatable, in order), the drill-down window
// (events_from, events_to: RFC 3339) and the page size. A parameter it
// cannot read is dropped, and a note says what was wrong.
export function parse(search) {
  const q = new URLSearchParams(search);
  const notes = [];
  const where = [];
  for (const w of q.getAll(P.where)) {
    const i = w.indexOf('=');
    if (i <= 0) {
      notes.push(`where=${w} is not COLUMN=VALUE`);
      continue;
    }
    const col = w.slice(0, i);
    const at = where.findIndex(([c]) => c === col);
    if (at >= 0) where.splice(at, 1);
    where.push([col, w.slice(i + 1)]);
  }
  let window = null;
  if (q.has(P.from) || q.has(P.to)) {
    const f = Date.parse(q.get(P.from) ?? '');
    const t = Date.parse(q.get(P.to) ?? '');
    if (Number.isNaN(f) || Number.isNaN(t) || f >= t) {
      notes.push(`${P.from}=${q.get(P.from) ?? ''}&${P.to}=${q.get(P.to) ?? ''} is not a from–to range of two RFC 3339 times`);
    } else {
      window = [f, t];
    }
  }
  let limit = DEFAULT_LIMIT;
  if (q.has(P.limit)) {
    const v = q.get(P.limit);
    const n = /^[0-9]+$/.test(v) ? Number(v) : NaN;
    if (!(n >= 1 && n <= MAX_LIMIT)) notes.push(`${P.limit}=${v} is not a whole number from 1 to ${MAX_LIMIT}`);
    else limit = n;
  }
  return { where, window, limit, note: notes.length ? notes.join('; ') + ': ignored' : null };
}

// write puts the panel's state into a query string, keeping the other
// parameters of search.
export function write(search, { where, window, limit }) {
  const q = new URLSearchParams(search);
  for (const k of Object.values(P)) q.delete(k);
  for (const [c, v] of where) q.append(P.where, c + '=' + v);
  if (window) {
    q.set(P.from, iso(window[0]));
    q.set(P.to, iso(window[1]));
  }
  if (limit !== DEFAULT_LIMIT) q.set(P.limit, String(limit));
  return '?' + q.toString();
}

// query returns the history API's query for stream over [from, to) with
// the filters, without paging parameters.
export function query(from, to, where) {
  const q = new URLSearchParams({ from: iso(from), to: iso(to) });
  for (const [c, v] of where) q.append('where', c + '=' + v);
  return q;
}

// historyURL is the history API's path of stream.
const historyURL = (stream) => `/v1/streams/${encodeURIComponent(stream)}/history`;

// apiError reads an error answer: the server's {"error": ...} message,
// else the status text.
async function apiError(res) {
  let msg = res.statusText;
  try {
    const body = await res.json();
    msg = body.error || JSON.stringify(body);
  } catch {
    // not JSON: keep the status text
  }
  const err = new Error(`HTTP ${res.status}: ${msg}`);
  err.status = res.status;
  err.serverMessage = msg;
  return err;
}

// fetchPage reads one page: {events, next}.
export async function fetchPage(stream, q, signal) {
  const res = await fetch(historyURL(stream) + '?' + q, { signal });
  if (!res.ok) throw await apiError(res);
  const body = await res.json();
  return { events: body.events || [], next: body.next ?? null };
}

// The columns every archive file has besides event_time (docs/archive.md):
// where the event came from, shown after the event's own columns.
const ORIGIN = ['key', 'kafka_partition', 'kafka_offset'];

// columnsOf returns cols extended by the members of events not in it yet:
// event_time first, then the event's columns in the order they first
// appear, then the Kafka origin columns. The JSON answer leaves out a
// column without a value, so the union over the events read is what the
// stream has shown so far.
export function columnsOf(cols, events) {
  const seen = new Set(cols);
  const add = [];
  for (const e of events) {
    for (const k of Object.keys(e)) {
      if (!seen.has(k)) {
        seen.add(k);
        add.push(k);
      }
    }
  }
  if (add.length === 0) return cols;
  const all = cols.concat(add);
  const rank = (c) => (c === 'event_time' ? 0 : ORIGIN.includes(c) ? 2 : 1);
  return all.map((c, i) => [rank(c), i, c]).sort((a, b) => a[0] - b[0] || a[1] - b[1]).map((x) => x[2]);
}

// cellText formats one value: event_time in the browser's local time,
// numbers and strings as the API wrote them, an absent value as –.
export function cellText(col, v) {
  if (v == null) return '–';
  if (col === 'event_time') {
    const ms = Date.parse(v);
    return Number.isNaN(ms) ? String(v) : localSeconds(ms);
  }
  return String(v);
}

const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
const n = (x) => x.toLocaleString('en-US');

// makeEvents builds the panel in root, hidden until configure(). onURL()
// is called when the panel's part of the URL changes (the app writes the
// whole URL, with write() for the panel's part).
export function makeEvents(root, { onURL }) {
  root.innerHTML = `
    <div class="panel-head">
      <h2>Raw events</h2>
      <span class="panel-sub events-sub"></span>
    </div>
    <p class="events-unavailable" hidden></p>
    <div class="events-body">
      <form class="events-filter" aria-label="Raw events filter" novalidate>
        <span class="events-fields"></span>
        <button type="submit" class="events-apply">Filter</button>
        <button type="button" class="events-whole" hidden title="show the raw events of the whole range again">× whole range</button>
        <span class="events-downloads">Download
          <a class="events-csv" download>CSV</a>
          <a class="events-parquet" download>Parquet</a>
        </span>
      </form>
      <p class="range-note events-note" role="alert" hidden></p>
      <p class="chart-status events-status" role="status" hidden></p>
      <p class="chart-error events-error" role="alert" hidden></p>
      <p class="chart-empty events-empty" hidden></p>
      <div class="events-scroll" hidden>
        <table class="rows events-table"><thead></thead><tbody></tbody></table>
      </div>
      <div class="rows-nav events-nav">
        <span class="events-count"></span>
        <span>
          <button type="button" class="events-refresh" title="read the range again from its first page">Refresh</button>
          <button type="button" class="events-more" hidden>Load more</button>
        </span>
      </div>
    </div>`;
  const el = (c) => root.querySelector('.' + c);
  const url = parse(location.search);
  const s = {
    stream: 'city',
    filterCols: ['sensor_id', 'kind'],
    base: null, // [from, to) of the range picker
    live: false, // the base range trails event time
    window: url.window, // a drill-down window, replacing base
    where: url.where,
    limit: url.limit,
    note: url.note,
    cols: [], // the columns the answers have shown
    values: new Map(), // column -> Set of values seen, for the filter suggestions
    events: [],
    next: null,
    loading: false,
    error: null,
    unavailable: null,
    load: null, // {ctl} of the read in flight
    ready: false, // configure() was called
  };

  const bounds = () => s.window ?? s.base;

  function links() {
    const b = bounds();
    for (const [cls, format] of [['events-csv', 'csv'], ['events-parquet', 'parquet']]) {
      const a = el(cls);
      if (!b) {
        a.removeAttribute('href');
        continue;
      }
      const q = query(b[0], b[1], s.where);
      q.set('format', format);
      q.set('limit', String(MAX_LIMIT));
      a.href = historyURL(s.stream) + '?' + q;
      a.setAttribute('download', `${s.stream}-events-${iso(b[0]).replace(/:/g, '')}.${format}`);
    }
  }

  // fields renders an input per filter column the stream has (or that is
  // set), and per other where= of the URL. The inputs are built again
  // only when the columns or the applied filters change, so that what is
  // being typed stays; the suggestions follow the values read.
  let fieldsKey = '';
  function fields() {
    const box = el('events-fields');
    const set = new Map(s.where);
    const cols = s.filterCols.filter((c) => set.has(c) || s.cols.includes(c));
    for (const [c] of s.where) if (!cols.includes(c)) cols.push(c);
    const key = JSON.stringify([cols, s.where]);
    if (key !== fieldsKey) {
      fieldsKey = key;
      box.replaceChildren();
      for (const c of cols) {
        const label = document.createElement('label');
        label.innerHTML = `${esc(c)} <input type="text" name="${esc(c)}" placeholder="any" spellcheck="false" autocomplete="off"><datalist></datalist>`;
        const input = label.querySelector('input');
        const list = label.querySelector('datalist');
        list.id = 'events-values-' + c;
        input.setAttribute('list', list.id);
        input.value = set.get(c) ?? '';
        box.appendChild(label);
      }
    }
    for (const list of box.querySelectorAll('datalist')) {
      const c = list.id.slice('events-values-'.length);
      const vals = [...(s.values.get(c) ?? [])].sort().slice(0, 200);
      if (list.options.length === vals.length) continue;
      list.replaceChildren(...vals.map((v) => Object.assign(document.createElement('option'), { value: v })));
    }
    el('events-apply').hidden = cols.length === 0;
  }

  function render() {
    root.hidden = !s.ready;
    const state = s.unavailable ? 'unavailable' : s.loading && s.events.length === 0 ? 'loading' :
      s.error && s.events.length === 0 ? 'error' : s.events.length === 0 ? 'empty' : 'ready';
    root.dataset.state = state;
    root.dataset.total = String(s.events.length);
    root.dataset.more = String(s.next != null);
    const un = el('events-unavailable');
    un.hidden = !s.unavailable;
    un.textContent = s.unavailable ? `Raw events are not available: ${s.unavailable}` : '';
    el('events-body').hidden = !!s.unavailable;
    root.classList.toggle('off', !!s.unavailable);
    if (s.unavailable) {
      el('events-sub').textContent = '';
      return;
    }
    const b = bounds();
    let sub = '';
    if (b) {
      sub = s.window ? `window ${localSeconds(b[0])} – ${localSeconds(b[1])}` :
        s.live ? `the range up to ${localSeconds(b[1])}` : `${localTime(b[0])} – ${localTime(b[1])}`;
      sub += ' · ' + s.stream + ' · archive order';
    }
    el('events-sub').textContent = sub;
    el('events-whole').hidden = !s.window;
    fields();
    links();

    const note = el('events-note');
    note.hidden = s.note == null;
    note.textContent = s.note ?? '';
    const err = el('events-error');
    err.hidden = s.error == null;
    err.textContent = s.error ?? '';
    const status = el('events-status');
    status.hidden = !s.loading;
    status.textContent = s.loading ? (s.events.length ? 'loading more raw events…' : 'loading raw events…') : '';
    const empty = el('events-empty');
    empty.hidden = state !== 'empty' || s.error != null;
    empty.textContent = s.where.length ? 'No raw events match the filter in this range.' : 'No raw events in this range.';
    el('events-scroll').hidden = s.events.length === 0;
    el('events-count').textContent = s.events.length === 0 ? '' :
      `${n(s.events.length)} ${s.events.length === 1 ? 'event' : 'events'} · ` + (s.next != null ? 'more in this range' : 'the whole range');
    const more = el('events-more');
    more.hidden = s.next == null;
    more.disabled = s.loading;
    el('events-refresh').disabled = !b;
  }

  // head draws the header; a column whose values are numbers is right
  // aligned.
  let numCols = new Set();
  function head() {
    numCols = new Set(s.cols.filter((c) => s.events.some((e) => typeof e[c] === 'number')));
    const tr = document.createElement('tr');
    for (const c of s.cols) {
      const th = document.createElement('th');
      th.textContent = c;
      th.dataset.col = c;
      if (numCols.has(c)) th.className = 'num';
      tr.appendChild(th);
    }
    el('events-table').tHead.replaceChildren(tr);
  }

  function rowOf(e) {
    const tr = document.createElement('tr');
    tr.dataset.time = e.event_time ?? '';
    for (const c of s.cols) {
      const td = document.createElement('td');
      td.textContent = cellText(c, e[c]);
      if (c === 'event_time' && e[c] != null) td.title = e[c];
      if (numCols.has(c)) td.className = 'num';
      tr.appendChild(td);
    }
    return tr;
  }

  // add appends a page; a page with columns not seen yet redraws the
  // table with them.
  function add(events) {
    const cols = columnsOf(s.cols, events);
    for (const e of events) {
      for (const c of s.filterCols) {
        if (e[c] == null) continue;
        if (!s.values.has(c)) s.values.set(c, new Set());
        s.values.get(c).add(String(e[c]));
      }
    }
    const body = el('events-table').tBodies[0];
    s.events = s.events.concat(events);
    if (cols !== s.cols) {
      s.cols = cols;
      head();
      body.replaceChildren(...s.events.map(rowOf));
    } else {
      body.append(...events.map(rowOf));
    }
  }

  // read loads a page: the first of the range (after null), or the one
  // after the token.
  async function read(after) {
    if (s.load) s.load.ctl.abort();
    const b = bounds();
    if (!b || !s.ready) return;
    const load = { ctl: new AbortController() };
    s.load = load;
    s.loading = true;
    s.error = null;
    if (after == null) {
      s.events = [];
      s.next = null;
      el('events-table').tBodies[0].replaceChildren();
    }
    render();
    const q = query(b[0], b[1], s.where);
    q.set('limit', String(s.limit));
    if (after != null) q.set('after', after);
    try {
      const page = await fetchPage(s.stream, q, load.ctl.signal);
      if (s.load !== load) return;
      s.unavailable = null;
      add(page.events);
      s.next = page.next;
    } catch (err) {
      if (s.load !== load) return;
      if (err.status === 404) {
        s.unavailable = err.serverMessage;
      } else {
        s.error = `could not load the raw events of ${s.stream}: ${err.message}`;
      }
    }
    s.load = null;
    s.loading = false;
    render();
  }

  el('events-more').addEventListener('click', () => {
    if (s.next != null && !s.loading) read(s.next);
  });
  el('events-refresh').addEventListener('click', () => read(null));
  el('events-whole').addEventListener('click', () => {
    s.window = null;
    onURL();
    read(null);
  });
  el('events-filter').addEventListener('submit', (e) => {
    e.preventDefault();
    const where = [];
    for (const input of el('events-fields').querySelectorAll('input')) {
      const v = input.value.trim();
      if (v !== '') where.push([input.name, v]);
    }
    s.where = where;
    s.note = null;
    onURL();
    read(null);
  });

  return {
    // configure names the stream and the filter columns (its group-by
    // column, then the sensor and the kind), then shows the panel.
    configure({ stream, filterCols }) {
      s.stream = stream;
      s.filterCols = [...new Set(filterCols)];
      s.ready = true;
      render();
    },
    // range sets the picker's range, [from, to) in ms; live says that it
    // trails event time. It reads the first page again.
    range(b, live) {
      s.base = b;
      s.live = live;
      read(null);
    },
    // whole drops the drill-down window (the picker's range changed).
    whole() {
      s.window = null;
    },
    // drill shows the raw events of one result window: [from, to), where
    // column equals value (the window's group key); the other filters stay.
    drill(column, value, from, to) {
      s.where = s.where.filter(([c]) => c !== column).concat([[column, value]]);
      s.window = [from, to];
      s.note = null;
      onURL();
      read(null);
      root.scrollIntoView({ block: 'nearest' });
    },
    // write adds the panel's state to a query string.
    write: (search) => write(search, s),
  };
}
