// The time range of the chart panel: a preset that trails the live event
// time (last 15 min, 1 h, 24 h, 7 d), or a fixed custom from–to. It lives
// in the page's URL (?range=1h, or ?from=…&to=… in RFC 3339), so that a
// link or a reload shows the same range.

const MINUTE = 60 * 1000;

// PRESETS in the order the picker shows them.
export const PRESETS = [
  { id: '15m', ms: 15 * MINUTE, label: '15 min', long: 'last 15 minutes' },
  { id: '1h', ms: 60 * MINUTE, label: '1 h', long: 'last hour' },
  { id: '24h', ms: 24 * 60 * MINUTE, label: '24 h', long: 'last 24 hours' },
  { id: '7d', ms: 7 * 24 * 60 * MINUTE, label: '7 d', long: 'last 7 days' },
];

export const DEFAULT = { kind: 'preset', id: '15m' };

const preset = (id) => PRESETS.find((p) => p.id === id);

// follows says whether the range trails event time and takes live updates
// (a preset), or is fixed and paused (custom).
export const follows = (r) => r.kind === 'preset';

// bounds returns [from, to) in ms; end is "now" in event time, used by
// the presets.
export function bounds(r, end) {
  if (r.kind === 'custom') return [r.from, r.to];
  return [end - preset(r.id).ms, end];
}

// parse reads the range from a URL's query string. A range it cannot
// read gives the default and a note saying what was wrong.
export function parse(search) {
  const q = new URLSearchParams(search);
  const id = q.get('range');
  const from = q.get('from');
  const to = q.get('to');
  if (from != null || to != null) {
    const f = Date.parse(from ?? '');
    const t = Date.parse(to ?? '');
    if (Number.isNaN(f) || Number.isNaN(t)) {
      return { range: DEFAULT, note: `the link's range (from=${from ?? ''}&to=${to ?? ''}) needs two times such as 2026-12-01T10:00:00Z: showing the last 15 minutes` };
    }
    if (f >= t) return { range: DEFAULT, note: `the link's range starts (${from}) at or after its end (${to}): showing the last 15 minutes` };
    return { range: { kind: 'custom', from: f, to: t }, note: null };
  }
  if (id == null) return { range: DEFAULT, note: null };
  if (!preset(id)) {
    return { range: DEFAULT, note: `range=${id} is unknown (use ${PRESETS.map((p) => p.id).join(', ')}, or from= and to=): showing the last 15 minutes` };
  }
  return { range: { kind: 'preset', id }, note: null };
}

// iso writes a time as RFC 3339 in UTC, without milliseconds when they are 0.
export const iso = (ms) => new Date(ms).toISOString().replace('.000Z', 'Z');

// write puts the range and the selected zone into a query string, keeping
// the other parameters of search.
export function write(search, r, zone) {
  const q = new URLSearchParams(search);
  for (const k of ['range', 'from', 'to', 'zone']) q.delete(k);
  if (r.kind === 'custom') {
    q.set('from', iso(r.from));
    q.set('to', iso(r.to));
  } else {
    q.set('range', r.id);
  }
  if (zone != null) q.set('zone', zone);
  return '?' + q.toString();
}

const pad = (n) => String(n).padStart(2, '0');

// localInput formats ms for an <input type="datetime-local"> (local time).
export function localInput(ms) {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

// readInput parses a datetime-local value (local time); NaN when empty.
export const readInput = (v) => (v ? new Date(v).getTime() : NaN);

// localTime formats ms as local "YYYY-MM-DD HH:MM".
export const localTime = (ms) => localInput(ms).replace('T', ' ');

// localSeconds formats ms as local "YYYY-MM-DD HH:MM:SS", with ".mmm"
// when the milliseconds are not 0: the time of a raw event.
export function localSeconds(ms) {
  const d = new Date(ms);
  const msec = d.getMilliseconds();
  return localTime(ms) + ':' + pad(d.getSeconds()) + (msec ? '.' + String(msec).padStart(3, '0') : '');
}

// describe says in words which range r is.
export function describe(r) {
  if (r.kind === 'preset') return preset(r.id).long;
  return localTime(r.from) + ' – ' + localTime(r.to);
}

// custom checks the picker's inputs and returns the custom range, or an
// error that says what to fix.
export function custom(fromValue, toValue) {
  const from = readInput(fromValue);
  const to = readInput(toValue);
  if (Number.isNaN(from) || Number.isNaN(to)) return { error: 'give both a start and an end time' };
  if (from >= to) return { error: 'the start must be before the end' };
  return { range: { kind: 'custom', from, to } };
}
