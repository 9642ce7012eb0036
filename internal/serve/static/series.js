// Turning rows into what a chart draws: the stored rows and the open
// (live) windows merged by time, and downsampling to about one point per
// pixel so that a week of one-minute windows (10,080 points) stays quick.

// merge returns the rows of stored (sorted by time) with from <= time <
// to, followed by the live rows newer than the last stored one (a final
// wins over the live row of its window), sorted by time.
export function merge(stored, live, time, from, to) {
  let i = lowerBound(stored, from, time);
  const out = [];
  for (; i < stored.length && time(stored[i]) < to; i++) out.push(stored[i]);
  const last = out.length > 0 ? time(out[out.length - 1]) : -Infinity;
  const newer = live.filter((r) => time(r) > last && time(r) >= from && time(r) < to);
  newer.sort((a, b) => time(a) - time(b));
  return out.concat(newer);
}

// lowerBound returns the index of the first row of sorted rows whose time
// is at least t.
export function lowerBound(rows, t, time) {
  let lo = 0;
  let hi = rows.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (time(rows[mid]) < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// downsample keeps xs and ys when they have at most 2*buckets points;
// else it cuts the x range into buckets and keeps the lowest and the
// highest point of each, in x order, so that peaks and dips survive.
// Points without a value (null) are dropped.
export function downsample(xs, ys, buckets) {
  const n = xs.length;
  if (n <= 2 * buckets) return [xs, ys];
  const x0 = xs[0];
  const span = xs[n - 1] - x0 || 1;
  const ox = [];
  const oy = [];
  let b = -1;
  let lo = -1;
  let hi = -1;
  const flush = () => {
    if (lo < 0) return;
    const [a, c] = lo <= hi ? [lo, hi] : [hi, lo];
    ox.push(xs[a]);
    oy.push(ys[a]);
    if (c !== a) {
      ox.push(xs[c]);
      oy.push(ys[c]);
    }
  };
  for (let i = 0; i < n; i++) {
    const bi = Math.min(buckets - 1, Math.floor(((xs[i] - x0) / span) * buckets));
    if (bi !== b) {
      flush();
      b = bi;
      lo = -1;
      hi = -1;
    }
    const y = ys[i];
    if (y == null) continue;
    if (lo < 0 || y < ys[lo]) lo = i;
    if (hi < 0 || y > ys[hi]) hi = i;
  }
  flush();
  return [ox, oy];
}
