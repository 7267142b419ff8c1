// The demo page of `make run`: four PushStreamClients (one per transport) on
// the same channel, a publish box, and the statistics location polled every
// second.  No build step: an ES module served as is.
import { PushStreamClient } from '/js/pushstream-client.js';

const params = new URLSearchParams(window.location.search);
const CHANNEL = params.get('channel') || 'demo';
const MAX_SHOWN = 200;
const TRANSPORTS = [
  { name: 'websocket', title: 'WebSocket', url: '/ws/' },
  { name: 'eventsource', title: 'EventSource', url: '/ev/' },
  { name: 'longpolling', title: 'Long-polling', url: '/lp/' },
  { name: 'stream', title: 'Streaming', url: '/frame/' },
];

const $ = (sel, root = document) => root.querySelector(sel);

// ---------------------------------------------------------------- transports
const panes = {};

function statusText(s, d) {
  if (s === 'waiting') return `reconnecting in ${(d.delay / 1000).toFixed(1)} s`;
  if (s === 'closed') return d && d.clean ? 'closed by the server' : 'connection failed';
  return s;
}

function addPane(t) {
  const el = $('#pane-template').content.firstElementChild.cloneNode(true);
  el.id = `pane-${t.name}`;
  el.dataset.transport = t.name;
  $('h3', el).textContent = t.title;
  $('.url', el).textContent = `${t.url}${CHANNEL}`;
  $('#panes').appendChild(el);
  const pane = {
    el, status: 'stopped', everOpened: false, connectingAt: 0, resumed: false, caught: 0, msgs: [],
  };
  panes[t.name] = pane;
  const setStatus = (s, d) => {
    pane.status = s;
    el.dataset.status = s;
    $('.status span', el).textContent = statusText(s, d || {});
    if (s === 'connecting') {
      pane.connectingAt = Date.now();
      pane.resumed = pane.everOpened;
      pane.caught = 0;
      const p = pane.client.position;
      if (pane.resumed) {
        $('.resume', el).textContent = p.time !== null
          ? `resuming after tag ${p.tag} of ${p.time.slice(17, 25)} (?time=…&tag=${p.tag})`
          : (p.eventid ? `resuming after event id ${p.eventid}` : 'reconnecting');
      }
      if (t.name === 'longpolling') {
        // A long-poll is only answered when a message comes (or after 30 s):
        // a request the server still holds after a moment is a live one.
        const at = pane.connectingAt;
        setTimeout(() => {
          if (pane.status !== 'connecting' || pane.connectingAt !== at) return;
          pane.everOpened = true;
          el.dataset.status = 'open';
          $('.status span', el).textContent = 'open (request held)';
        }, 300);
      }
    } else if (s === 'open') {
      pane.everOpened = true;
    }
  };
  pane.client = new PushStreamClient({
    transport: t.name,
    url: t.url,
    channels: [CHANNEL],
    backtrack: 10,            // first connect: the last 10 stored messages
    initialDelay: 500,        // after a failure (server stopped): 0.5, 1, 2, 4 s...
    maxDelay: 4000,
    onstatus: setStatus,
    onmessage: (m) => addMessage(pane, m),
  });
  $('.toggle', el).addEventListener('click', () => {
    if (pane.client.status === 'stopped') {
      pane.client.connect();
      $('.toggle', el).textContent = 'Pause';
    } else {
      pane.client.disconnect();
      $('.toggle', el).textContent = 'Resume';
      $('.resume', el).textContent = 'paused: publish something, then resume';
    }
  });
  pane.client.connect();
}

function addMessage(pane, m) {
  // Replayed backlog, not a live message: published (server time, whole
  // seconds) at least a second before this connection began.  (A message
  // published in the second before a reconnect shows as live.)
  const t = Date.parse(m.time);
  const backlog = t + 1000 <= pane.connectingAt;
  const kind = backlog ? (pane.resumed ? 'caught' : 'history') : 'live';
  pane.msgs.push({ id: m.id, tag: m.tag, time: m.time, text: m.text, kind });
  const li = document.createElement('li');
  li.className = kind;
  const add = (cls, text) => {
    const s = document.createElement('span');
    s.className = cls;
    s.textContent = text;
    li.appendChild(s);
  };
  add('id', m.id === null ? '#?' : `#${m.id}`);
  add('text', m.text);
  if (kind !== 'live') add(`badge ${kind}`, kind === 'caught' ? 'caught up' : 'history');
  add('tag', m.time ? `${m.time.slice(17, 25)} tag ${m.tag}` : '');
  const list = $('.msgs', pane.el);
  list.appendChild(li);
  while (list.children.length > MAX_SHOWN) list.firstElementChild.remove();
  list.scrollTop = list.scrollHeight;
  if (kind === 'caught') {
    pane.caught += 1;
    $('.resume', pane.el).textContent =
      `resumed by ?time=&tag=: caught up ${pane.caught} missed message${pane.caught > 1 ? 's' : ''}`;
  }
}

// ---------------------------------------------------------------- publishing
let published = 0;

async function publish(text) {
  const nick = $('#nick').value.trim() || 'guest';
  published += 1;
  const out = $('#pubresult');
  try {
    const r = await fetch(`/pub?id=${encodeURIComponent(CHANNEL)}`, {
      method: 'POST',
      headers: { Accept: 'application/json', 'Event-Id': `${nick}-${published}` },
      body: `${nick}: ${text}`,
    });
    if (r.ok) {
      const info = await r.json();
      out.textContent = `published: ${info.stored_messages} stored in ${CHANNEL}, `
        + `${info.subscribers} subscribers`;
      out.className = 'hint ok';
    } else {
      out.textContent = `${r.status} ${r.headers.get('X-Nginx-PushStream-Explain') || r.statusText}`;
      out.className = 'hint err';
    }
    return r.status;
  } catch (e) {
    out.textContent = `publish failed: ${e.message} (is the server running?)`;
    out.className = 'hint err';
    return 0;
  }
}

$('#publish').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const box = $('#text');
  const text = box.value.trim();
  if (!text) return;
  box.value = '';
  publish(text);
});

// ---------------------------------------------------------------- statistics
const history = [];            // messages/s, one point a second, last 60
let last = null;

function drawChart() {
  const c = $('#chart');
  const g = c.getContext('2d');
  const w = c.width, h = c.height, n = 60;
  g.clearRect(0, 0, w, h);
  const max = Math.max(1, ...history);
  const scale = Math.pow(10, Math.floor(Math.log10(max)));
  const top = Math.ceil(max / scale) * scale;
  g.strokeStyle = '#e3e7ee';
  g.fillStyle = '#8a94a6';
  g.font = '10px sans-serif';
  g.lineWidth = 1;
  for (const f of [0, 0.5, 1]) {
    const y = Math.round(h - 12 - f * (h - 20)) + 0.5;
    g.beginPath(); g.moveTo(28, y); g.lineTo(w, y); g.stroke();
    g.fillText(String(Math.round(top * f * 10) / 10), 2, y + 3);
  }
  g.fillText('60 s ago', 30, h - 1);
  g.fillText('now', w - 20, h - 1);
  if (!history.length) return;
  const x = (i) => 28 + (w - 30) * (i + n - history.length) / (n - 1);
  const y = (v) => h - 12 - (v / top) * (h - 20);
  g.beginPath();
  g.moveTo(x(0), h - 12);
  history.forEach((v, i) => g.lineTo(x(i), y(v)));
  g.lineTo(x(history.length - 1), h - 12);
  g.closePath();
  g.fillStyle = 'rgba(47, 111, 235, 0.18)';
  g.fill();
  g.beginPath();
  history.forEach((v, i) => (i ? g.lineTo(x(i), y(v)) : g.moveTo(x(i), y(v))));
  g.strokeStyle = '#2f6feb';
  g.lineWidth = 2;
  g.stroke();
}

async function pollStats() {
  const state = $('#st-state');
  try {
    const r = await fetch('/channels-stats', { headers: { Accept: 'application/json' }, cache: 'no-store' });
    if (!r.ok) throw new Error(`${r.status} ${r.statusText}`);
    const s = await r.json();
    const now = Date.now();
    let rate = 0;
    if (last && s.published_messages >= last.published) {
      rate = (s.published_messages - last.published) / ((now - last.at) / 1000);
    }
    last = { at: now, published: s.published_messages };
    history.push(rate);
    if (history.length > 60) history.shift();
    $('#st-channels').textContent = s.channels;
    $('#st-subscribers').textContent = s.subscribers;
    $('#st-published').textContent = s.published_messages;
    $('#st-rate').textContent = rate.toFixed(rate < 10 ? 1 : 0);
    state.textContent = `server up ${s.uptime} s, ${s.by_worker.length} httpd children, `
      + `${s.stored_messages} stored messages`;
    state.className = 'hint ok';
    window.demo.statsUpdates += 1;
  } catch (e) {
    last = null;
    history.push(0);
    if (history.length > 60) history.shift();
    state.textContent = `statistics unavailable: ${e.message}`;
    state.className = 'hint err';
  }
  drawChart();
}

// ---------------------------------------------------------------- start
for (const el of document.querySelectorAll('#channel, .ch')) el.textContent = CHANNEL;
$('#curl').textContent = `curl -d 'Hi from a shell' '${window.location.origin}/pub?id=${CHANNEL}'`;
$('#nick').value = `guest${Math.floor(Math.random() * 900) + 100}`;
window.demo = { channel: CHANNEL, panes, publish, statsUpdates: 0, ready: false };
TRANSPORTS.forEach(addPane);
drawChart();
pollStats();
setInterval(pollStats, 1000);
window.demo.ready = true;
