// The charts of the selected zone: one uPlot per metric, synchronised
// cursors, each series downsampled to about one point per pixel.
import { downsample } from './series.js';

const HEIGHT = 180;
const DAY = 24 * 60 * 60 * 1000;
const pad = (n) => String(n).padStart(2, '0');

// timeLabel formats an axis tick: the clock, or at midnight the date
// when the range spans more than a day.
function timeLabel(ms, span) {
  const d = new Date(ms);
  if (span > DAY && d.getHours() === 0 && d.getMinutes() === 0) return pad(d.getMonth() + 1) + '-' + pad(d.getDate());
  return pad(d.getHours()) + ':' + pad(d.getMinutes());
}

// cursorLabel formats the time under the cursor, with the date for a
// range of more than a day.
function cursorLabel(ms, span) {
  const d = new Date(ms);
  const clock = pad(d.getHours()) + ':' + pad(d.getMinutes());
  return span > DAY ? pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' + clock : clock;
}

function lastValue(ys) {
  for (let i = ys.length - 1; i >= 0; i--) if (ys[i] != null) return ys[i];
  return null;
}

// makeCharts builds a chart per metric in root. xRange() returns the
// x range to show, [from, to] in ms. It returns draw(rows, time), which
// plots rows (sorted by time(row)) at each row's time, and records on
// root how many rows it was given (data-points) and how many points the
// busiest chart drew (data-drawn). A click on a chart calls onPick(ms)
// with the time of the point under the cursor, when onPick is given.
export function makeCharts(root, metrics, xRange, onPick) {
  const charts = [];
  const span = () => { const [a, b] = xRange(); return b - a; };
  const axis = (m) => ({
    stroke: '#8e8e9a',
    grid: { stroke: 'rgba(204, 204, 220, 0.07)', width: 1 },
    ticks: { stroke: 'rgba(204, 204, 220, 0.12)', width: 1, size: 4 },
    font: '12px Inter, system-ui, sans-serif',
    size: m ? 48 : 30,
    values: m ? undefined : (u, vals) => vals.map((v) => timeLabel(v * 1000, span())),
  });
  const width = () => Math.max(200, root.clientWidth - 8);
  for (const m of metrics) {
    const box = document.createElement('div');
    box.className = 'chart chart-' + m.cls;
    box.innerHTML = `<div class="chart-head"><span class="swatch" style="background:${m.color}"></span>
      <span class="chart-label">${m.label}</span><span class="chart-unit">${m.unit}</span>
      <span class="chart-value"></span></div><div class="plot"></div>`;
    root.appendChild(box);
    const head = box.querySelector('.chart-value');
    const fmt = (v) => (v == null || !Number.isFinite(v) ? '–' : v.toFixed(m.digits));
    const plot = new uPlot({
      width: width(),
      height: HEIGHT,
      cursor: { sync: { key: 'zone' }, points: { size: 8 } },
      legend: { show: false },
      scales: {
        x: { time: true, range: () => xRange().map((t) => t / 1000) },
        y: { range: (u, lo, hi) => (lo == null ? [0, 1] : lo === hi ? [lo - 1, hi + 1] : [lo - (hi - lo) * 0.1, hi + (hi - lo) * 0.1]) },
      },
      series: [
        {},
        // uPlot shows the points only while they are sparse enough to see.
        { label: m.label, stroke: m.color, width: 2, fill: m.color + '1f', spanGaps: false,
          points: { size: 5, fill: m.color }, value: (u, v) => fmt(v) },
      ],
      axes: [{ ...axis(null), space: 60 }, axis(m)], // 60 px between time ticks
      hooks: {
        setCursor: [(u) => {
          const i = u.cursor.idx;
          const ys = u.data[1];
          const v = i == null ? lastValue(ys) : ys[i];
          head.textContent = v == null ? '' : fmt(v) + (i == null ? '' : ' at ' + cursorLabel(u.data[0][i] * 1000, span()));
        }],
      },
    }, [[], []], box.querySelector('.plot'));
    if (onPick) {
      plot.over.style.cursor = 'pointer';
      plot.over.title = 'click a point to show the raw events of its window';
      plot.over.addEventListener('click', () => {
        const i = plot.cursor.idx;
        if (i != null && plot.data[0][i] != null) onPick(plot.data[0][i] * 1000);
      });
    }
    charts.push({ m, plot, head, fmt });
  }
  let last = null;
  new ResizeObserver(() => {
    for (const c of charts) c.plot.setSize({ width: width(), height: HEIGHT });
    if (last) draw(...last);
  }).observe(root);

  function draw(rows, time) {
    last = [rows, time];
    root.dataset.points = String(rows.length);
    const xs = rows.map((r) => time(r) / 1000);
    const buckets = Math.max(50, Math.floor(width()));
    let drawn = 0;
    for (const c of charts) {
      const ys = rows.map((r) => r[c.m.field + '_avg'] ?? null);
      const data = downsample(xs, ys, buckets);
      c.plot.setData(data);
      drawn = Math.max(drawn, data[0].length);
      if (c.plot.cursor.idx == null) c.head.textContent = c.fmt(lastValue(ys));
    }
    root.dataset.drawn = String(drawn);
  }
  return draw;
}
