// The zone tiles: one per zone, showing its latest open window.

const pad = (n) => String(n).padStart(2, '0');
const clock = (ms) => {
  const d = new Date(ms);
  return pad(d.getHours()) + ':' + pad(d.getMinutes());
};

// makeTiles keeps a tile per zone in grid; onSelect(zone) is called when
// one is clicked. fmt(v, digits) formats a reading.
export function makeTiles(grid, metrics, fmt, onSelect) {
  const tiles = new Map(); // zone -> tile element
  let selected = null;

  const show = (zone, tile) => {
    tile.classList.toggle('selected', zone === selected);
    tile.setAttribute('aria-pressed', String(zone === selected));
  };

  function make(zone) {
    const tile = document.createElement('div');
    tile.className = 'tile';
    tile.dataset.zone = zone;
    tile.tabIndex = 0;
    tile.setAttribute('role', 'button');
    show(zone, tile);
    const metric = (m) => `
      <div class="metric m-${m.cls}" title="${m.label}">
        <span class="label">${m.label}</span>
        <span class="reading"><span class="value ${m.cls}">–</span><span class="unit">${m.unit}</span></span>
        <span class="band"></span>
      </div>`;
    tile.innerHTML = `
      <div class="tile-head"><span class="zone"></span><span class="events"></span></div>
      ${metrics.map(metric).join('')}
      <div class="tile-foot"></div>`;
    tile.querySelector('.zone').textContent = zone;
    tile.addEventListener('click', () => onSelect(zone));
    tile.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault();
        onSelect(zone);
      }
    });
    return tile;
  }

  function fill(tile, row) {
    for (const m of metrics) {
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

  return {
    zones: () => [...tiles.keys()].sort(),
    // render shows latest (zone -> its latest open window); a known zone
    // without one is shown idle.
    render(latest) {
      let added = false;
      for (const zone of latest.keys()) {
        if (!tiles.has(zone)) {
          tiles.set(zone, make(zone));
          added = true;
        }
      }
      if (added) {
        for (const zone of [...tiles.keys()].sort()) grid.appendChild(tiles.get(zone));
      }
      for (const [zone, tile] of tiles) {
        const row = latest.get(zone);
        tile.classList.toggle('idle', !row);
        if (row) fill(tile, row);
      }
      return tiles.size;
    },
    // mark shows zone as the selected one.
    mark(zone) {
      selected = zone;
      for (const [z, tile] of tiles) show(z, tile);
    },
  };
}
