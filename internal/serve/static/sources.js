// Where the chart panel's stored rows come from. A source loads the rows
// of one series (one key of one output) over a time range, following the
// API's continuation tokens, and says at which time each row is plotted.
// The charts have one, the results API. The raw events of the stream,
// from the history API, are the panel below (events.js): they page
// forward on demand rather than being read whole, so they are not a
// source of this shape.

// limits.maxRows bounds what one load reads (20 pages of the results
// API): a longer range is cut after the page that reaches it, and the
// load says so.
export const limits = { maxRows: 200000 };

// apiError turns an error answer of the API into an Error with the
// server's own message.
async function apiError(res) {
  let msg = '';
  try {
    const body = await res.json();
    msg = body.error || JSON.stringify(body);
  } catch {
    msg = res.statusText;
  }
  return new Error(`HTTP ${res.status}: ${msg}`);
}

// pages reads url and every page after it (the answer's "next" token
// passed back as after=), until the answer is complete or maxRows rows
// were read.
export async function pages(url, { signal, maxRows = limits.maxRows } = {}) {
  const rows = [];
  let n = 0;
  let next = null;
  do {
    const u = new URL(url, location.href);
    if (next != null) u.searchParams.set('after', next);
    const res = await fetch(u, { signal });
    if (!res.ok) throw await apiError(res);
    const body = await res.json();
    n++;
    for (const r of body.results || []) rows.push(r);
    next = body.next ?? null;
  } while (next != null && rows.length < maxRows);
  return { rows, pages: n, truncated: next != null };
}

// results reads the stored final results of one key of an output, by
// window start: from the results API (docs/api.md).
export const results = {
  name: 'results',
  time: (row) => Date.parse(row.window_start),
  // load returns {rows, pages, truncated}: the rows whose window starts
  // in [from, to) (to null: no end), oldest first.
  load({ pipeline, output, key, from, to, signal }) {
    const q = new URLSearchParams({ output, key });
    if (from != null) q.set('from', new Date(from).toISOString());
    if (to != null) q.set('to', new Date(to).toISOString());
    return pages(`/v1/pipelines/${encodeURIComponent(pipeline)}/results?${q}`, { signal });
  },
};
