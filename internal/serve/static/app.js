// Pulse city dashboard: live zone tiles from the SSE live view, and a
// 30-minute chart of the selected zone from final results plus the live
// window. Plain JS, no build step; uPlot is loaded from vendor/.
'use strict';
(() => {
  const HISTORY_MS = 30 * 60 * 1000;
  const STALE_MS = 10 * 1000; // no live event for this long: reconnect
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

  const state = {
    pipeline: 'city',
    output: 'zone_1m',
    groupBy: 'zone',
    tiles: new Map(), // zone -> tile element
    selected: null,
    finals: [], // final rows of the selected zone
    live: [], // open-window rows of the selected zone
    rows: new Map(), // every open window of the output, by rowId
    anchor: null, // latest window end seen (ms): "now" in event time
    lastEvent: 0,
    source: null,
    charts: [],
  };

  const fmt = (v, digits) => (v == null || !Number.isFinite(v) ? '–' : v.toFixed(digits));
  const pad = (n) => String(n).padStart(2, '0');
  const clock = (ms, secs) => {
    const d = new Date(ms);
    return pad(d.getHours()) + ':' + pad(d.getMinutes()) + (secs ? ':' + pad(d.getSeconds()) : '');
  };
  const keyOf = (row) => row.key[state.groupBy] ?? Object.values(row.key)[0];
  const startOf = (row) => Date.parse(row.window_start);
  // A live row is identified by its key and window start; the server sends
  // both, in the same member order, with every change to the row.
  const rowId = (row) => JSON.stringify(row.key) + '|' + row.window_start;

  function duration(ms) {
    if (ms < 0) ms = 0;
    if (ms < 60000) return (ms / 1000).toFixed(1) + ' s';
    const m = Math.floor(ms / 60000);
    return m < 60 ? m + ' min ' + Math.floor((ms % 60000) / 1000) + ' s' : Math.floor(m / 60) + ' h ' + (m % 60) + ' min';
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
    if (state.source) state.source.close();
    const url = `/v1/pipelines/${encodeURIComponent(state.pipeline)}/live?output=${encodeURIComponent(state.output)}`;
    const es = new EventSource(url);
    state.source = es;
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
      if (es.readyState === EventSource.CLOSED && state.source === es) setTimeout(connect, 3000);
    };
  }

  // A stream that stays open but goes quiet (a proxy, a sleeping laptop)
  // is reopened.
  setInterval(() => {
    if (state.source && Date.now() - state.lastEvent > STALE_MS) {
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
      $('watermark').textContent = clock(msg.watermark, true);
      $('watermark-lag').textContent = 'lag ' + duration(msg.time - msg.watermark);
    }

    // The latest open window of each zone, and every open window of the
    // selected one (there can be two around a minute boundary).
    const rows = [...state.rows.values()];
    const latest = new Map();
    for (const row of rows) {
      const zone = keyOf(row);
      if (zone == null) continue;
      const prev = latest.get(zone);
      if (!prev || startOf(row) > startOf(prev)) latest.set(zone, row);
      const end = Date.parse(row.window_end);
      if (state.anchor == null || end > state.anchor) state.anchor = end;
    }
    renderTiles(latest);
    if (state.selected == null && state.tiles.size > 0) select([...state.tiles.keys()].sort()[0]);

    // A window that left the live view has closed: its final is coming.
    const mine = rows.filter((r) => keyOf(r) === state.selected);
    const now = new Set(mine.map(startOf));
    if (state.live.some((r) => !now.has(startOf(r)))) setTimeout(fetchFinals, 1500);
    state.live = mine;
    updateChart();
  }

  function renderTiles(latest) {
    const grid = $('tiles');
    let added = false;
    for (const zone of latest.keys()) {
      if (!state.tiles.has(zone)) {
        state.tiles.set(zone, makeTile(zone));
        added = true;
      }
    }
    if (added) {
      for (const zone of [...state.tiles.keys()].sort()) grid.appendChild(state.tiles.get(zone));
    }
    for (const [zone, tile] of state.tiles) {
      const row = latest.get(zone);
      tile.classList.toggle('idle', !row);
      if (row) fillTile(tile, row);
    }
    $('empty').hidden = state.tiles.size > 0;
    $('zone-count').textContent = String(state.tiles.size);
  }

  function makeTile(zone) {
    const tile = document.createElement('div');
    tile.className = 'tile';
    tile.dataset.zone = zone;
    tile.tabIndex = 0;
    tile.setAttribute('role', 'button');
    tile.setAttribute('aria-pressed', 'false');
    const metric = (m) => `
      <div class="metric m-${m.cls}" title="${m.label}">
        <span class="label">${m.label}</span>
        <span class="reading"><span class="value ${m.cls}">–</span><span class="unit">${m.unit}</span></span>
        <span class="band"></span>
      </div>`;
    tile.innerHTML = `
      <div class="tile-head"><span class="zone"></span><span class="events"></span></div>
      ${METRICS.map(metric).join('')}
      <div class="tile-foot"></div>`;
    tile.querySelector('.zone').textContent = zone;
    tile.addEventListener('click', () => select(zone));
    tile.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault();
        select(zone);
      }
    });
    return tile;
  }

  function fillTile(tile, row) {
    for (const m of METRICS) {
      const v = row[m.field + '_avg'];
      const box = tile.querySelector('.m-' + m.cls);
      const [band, word] = v == null ? ['none', 'no data'] : m.band(v);
      box.querySelector('.value').textContent = fmt(v, m.digits);
      box.querySelector('.band').textContent = word;
      box.dataset.band = band;
    }
    tile.querySelector('.events').textContent = row.count.toLocaleString('en-US') + ' events';
    tile.querySelector('.tile-foot').textContent =
      'window ' + clock(Date.parse(row.window_start)) + '–' + clock(Date.parse(row.window_end)) + (row.final ? '' : ' · live');
  }

  // ---- selection and chart ----------------------------------------------

  function select(zone) {
    if (state.selected === zone) return;
    state.selected = zone;
    state.finals = [];
    state.live = [];
    for (const [z, tile] of state.tiles) {
      tile.classList.toggle('selected', z === zone);
      tile.setAttribute('aria-pressed', String(z === zone));
    }
    $('chart-title').textContent = zone;
    updateChart();
    fetchFinals();
  }

  async function fetchFinals() {
    const zone = state.selected;
    if (zone == null) return;
    const from = new Date((state.anchor ?? Date.now()) - HISTORY_MS).toISOString();
    const url = `/v1/pipelines/${encodeURIComponent(state.pipeline)}/results?output=${encodeURIComponent(state.output)}` +
      `&key=${encodeURIComponent(zone)}&from=${encodeURIComponent(from)}`;
    try {
      const res = await fetch(url);
      if (!res.ok) throw new Error(res.status + ' ' + (await res.text()));
      const body = await res.json();
      if (zone !== state.selected) return; // the selection changed meanwhile
      state.finals = body.results || [];
      updateChart();
    } catch (err) {
      console.warn('pulse: loading results of ' + zone + ' failed', err);
    }
  }
  setInterval(fetchFinals, 60 * 1000);

  function axis(m) {
    return {
      stroke: '#8e8e9a',
      grid: { stroke: 'rgba(204, 204, 220, 0.07)', width: 1 },
      ticks: { stroke: 'rgba(204, 204, 220, 0.12)', width: 1, size: 4 },
      font: '12px Inter, system-ui, sans-serif',
      size: m ? 48 : 30,
      values: m ? undefined : (u, vals) => vals.map((v) => clock(v * 1000)),
    };
  }

  function makeCharts() {
    const root = $('chart');
    for (const m of METRICS) {
      const box = document.createElement('div');
      box.className = 'chart chart-' + m.cls;
      box.innerHTML = `<div class="chart-head"><span class="swatch" style="background:${m.color}"></span>
        <span class="chart-label">${m.label}</span><span class="chart-unit">${m.unit}</span>
        <span class="chart-value"></span></div><div class="plot"></div>`;
      root.appendChild(box);
      const head = box.querySelector('.chart-value');
      const plot = new uPlot({
        width: Math.max(200, root.clientWidth - 8),
        height: 180,
        cursor: { sync: { key: 'zone' }, points: { size: 8 } },
        legend: { show: false },
        scales: {
          x: { time: true, range: () => xRange() },
          y: { range: (u, lo, hi) => (lo == null ? [0, 1] : lo === hi ? [lo - 1, hi + 1] : [lo - (hi - lo) * 0.1, hi + (hi - lo) * 0.1]) },
        },
        series: [
          {},
          { label: m.label, stroke: m.color, width: 2, fill: m.color + '1f', spanGaps: false,
            points: { show: true, size: 5, fill: m.color }, value: (u, v) => fmt(v, m.digits) },
        ],
        axes: [axis(null), axis(m)],
        hooks: {
          setCursor: [(u) => {
            const i = u.cursor.idx;
            const ys = u.data[1];
            const v = i == null ? lastValue(ys) : ys[i];
            head.textContent = v == null ? '' : fmt(v, m.digits) + (i == null ? '' : ' at ' + clock(u.data[0][i] * 1000));
          }],
        },
      }, [[], []], box.querySelector('.plot'));
      state.charts.push({ m, plot, head });
    }
    new ResizeObserver(() => {
      const w = Math.max(200, root.clientWidth - 8);
      for (const c of state.charts) c.plot.setSize({ width: w, height: 180 });
    }).observe(root);
  }

  function lastValue(ys) {
    for (let i = ys.length - 1; i >= 0; i--) if (ys[i] != null) return ys[i];
    return null;
  }

  function xRange() {
    const now = state.anchor ?? Date.now();
    return [(now - HISTORY_MS) / 1000, now / 1000];
  }

  // Finals and the live windows merged by window start (a final wins), in
  // the last 30 minutes, plotted at each window's start.
  function updateChart() {
    const rows = new Map();
    for (const r of state.live) rows.set(startOf(r), r);
    for (const r of state.finals) rows.set(startOf(r), r);
    const lo = (state.anchor ?? Date.now()) - HISTORY_MS;
    const starts = [...rows.keys()].filter((t) => t >= lo).sort((a, b) => a - b);
    const xs = starts.map((t) => t / 1000);
    for (const c of state.charts) {
      const ys = starts.map((t) => rows.get(t)[c.m.field + '_avg'] ?? null);
      c.plot.setData([xs, ys]);
      if (c.plot.cursor.idx == null) c.head.textContent = fmt(lastValue(ys), c.m.digits);
    }
    $('chart').dataset.points = String(starts.length);
    $('chart').hidden = starts.length === 0;
    $('chart-empty').hidden = starts.length > 0;
    $('chart-empty').textContent = state.selected == null ? 'Select a zone to chart its last 30 minutes.' : 'No history for this zone yet.';
  }

  // ---- watermark --------------------------------------------------------

  // Under the watermark: which source partitions hold it back, or that
  // every one is idle and event time advances with the clock; the
  // tooltip has the server's full reason.
  const WATERMARK_EVERY_MS = 2000;

  function watermarkNote(w) {
    if (!w.partitions || w.partitions.length === 0) return null;
    if (w.all_idle) return { text: 'all sources idle · advancing with the clock', held: false };
    if (!w.held_by || w.held_by.length === 0) return null;
    const first = w.partitions.find((p) => p.holding);
    let why = '';
    if (first && first.event_time == null) why = ' (no event yet)';
    else if (first && first.backlog) why = ' (catching up)';
    else if (first) why = ' (last event ' + duration(first.last_read_ago_ms) + ' ago)';
    const more = w.held_by.length > 1 ? ' +' + (w.held_by.length - 1) : '';
    return { text: 'held by ' + w.held_by[0] + more + why, held: true };
  }

  async function fetchWatermark() {
    const el = $('watermark-held');
    try {
      const res = await fetch(`/v1/pipelines/${encodeURIComponent(state.pipeline)}/watermark`);
      if (!res.ok) throw new Error('HTTP ' + res.status);
      const w = await res.json();
      const note = watermarkNote(w);
      el.hidden = note == null;
      el.textContent = note ? note.text : '';
      el.classList.toggle('held', !!(note && note.held));
      el.title = w.reason || '';
    } catch (err) {
      el.hidden = true;
      console.warn('pulse: reading the watermark failed', err);
    }
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
        Object.assign(state, { pipeline: p.name, output: o.name, groupBy: (o.group_by || [])[0] || 'zone' });
        $('subtitle').textContent = `${p.name} · ${o.name} · ${o.window}`;
      }
    } catch (err) {
      console.warn('pulse: listing pipelines failed, using defaults', err);
    }
  }

  makeCharts();
  updateChart();
  discover().then(() => {
    connect();
    fetchWatermark();
    setInterval(fetchWatermark, WATERMARK_EVERY_MS);
  });
})();
