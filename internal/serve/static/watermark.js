// Under the watermark in the header: which source partitions hold it
// back, or that every one is idle and event time advances with the
// clock; the tooltip has the server's full reason.

const EVERY_MS = 2000;

function note(w, duration) {
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

// startWatermark reads the pipeline's watermark every few seconds into
// el; duration(ms) writes a time span.
export function startWatermark(pipeline, el, duration) {
  async function read() {
    try {
      const res = await fetch(`/v1/pipelines/${encodeURIComponent(pipeline)}/watermark`);
      if (!res.ok) throw new Error('HTTP ' + res.status);
      const w = await res.json();
      const n = note(w, duration);
      el.hidden = n == null;
      el.textContent = n ? n.text : '';
      el.classList.toggle('held', !!(n && n.held));
      el.title = w.reason || '';
    } catch (err) {
      el.hidden = true;
      console.warn('pulse: reading the watermark failed', err);
    }
  }
  read();
  setInterval(read, EVERY_MS);
}
