// The table under the charts: the rows of the selected range, newest
// first, PAGE rows at a time with previous/next buttons.
import { iso, localTime } from './range.js';

const PAGE = 12;

// makeTable builds the table in root for the given metrics and returns
// its update function: show(rows, time, fmt), rows oldest first. A click
// on a row (or Enter on it) calls onPick(row) when onPick is given.
export function makeTable(root, metrics, onPick) {
  root.innerHTML = `
    <table class="rows">
      <thead><tr><th>Window</th><th>Events</th>${metrics.map((m) => `<th>${m.label} <span class="unit">${m.unit}</span></th>`).join('')}</tr></thead>
      <tbody></tbody>
    </table>
    <div class="rows-nav">
      <button type="button" class="newer" aria-label="Newer rows">‹ newer</button>
      <span class="rows-count"></span>
      <button type="button" class="older" aria-label="Older rows">older ›</button>
    </div>`;
  const body = root.querySelector('tbody');
  const count = root.querySelector('.rows-count');
  const newer = root.querySelector('.newer');
  const older = root.querySelector('.older');
  let page = 0;
  let last = { rows: [], time: null, fmt: null };

  function render() {
    const { rows, time, fmt } = last;
    const pages = Math.max(1, Math.ceil(rows.length / PAGE));
    page = Math.min(page, pages - 1);
    const hi = rows.length - page * PAGE; // rows are oldest first
    const lo = Math.max(0, hi - PAGE);
    const trs = [];
    for (let i = hi - 1; i >= lo; i--) {
      const r = rows[i];
      const tr = document.createElement('tr');
      tr.dataset.start = iso(time(r));
      tr.dataset.end = r.window_end ?? '';
      if (!r.final) tr.className = 'live';
      if (onPick) {
        tr.tabIndex = 0;
        tr.classList.add('pick');
        tr.title = 'show the raw events of this window';
        tr.addEventListener('click', () => onPick(r));
        tr.addEventListener('keydown', (e) => { if (e.key === 'Enter') onPick(r); });
      }
      const cells = [localTime(time(r)) + (r.final ? '' : ' · live'), (r.count ?? 0).toLocaleString('en-US')];
      for (const m of metrics) cells.push(fmt(r[m.field + '_avg'], m.digits));
      for (const c of cells) {
        const td = document.createElement('td');
        td.textContent = c;
        tr.appendChild(td);
      }
      trs.push(tr);
    }
    body.replaceChildren(...trs);
    root.dataset.total = String(rows.length);
    root.dataset.page = String(page);
    root.hidden = rows.length === 0;
    count.textContent = rows.length === 0 ? '' :
      `rows ${(page * PAGE + 1).toLocaleString('en-US')}–${(page * PAGE + (hi - lo)).toLocaleString('en-US')} of ${rows.length.toLocaleString('en-US')}`;
    newer.disabled = page === 0;
    older.disabled = page >= pages - 1;
  }
  newer.addEventListener('click', () => { page = Math.max(0, page - 1); render(); });
  older.addEventListener('click', () => { page++; render(); });

  return {
    show(rows, time, fmt) {
      last = { rows, time, fmt };
      render();
    },
    // reset goes back to the newest rows (a new zone or range).
    reset() { page = 0; },
  };
}
