// pushstream-client.js - browser subscriber for mod_pushstream (and
// nginx-push-stream-module).  One ES module, no dependencies, no build step:
//
//   import { PushStreamClient } from '/js/pushstream-client.js';
//   const client = new PushStreamClient({
//     transport: 'websocket',            // 'eventsource' | 'longpolling' | 'stream'
//     url: '/event/ws/',                 // the location prefix; channels are appended
//     channels: ['room1', 'room2'],
//     onmessage: (m) => console.log(m.channel, m.text),
//   });
//   client.connect();                    // ... client.disconnect();
//
// Messages: the server's message template should render JSON carrying the
// position of each message (conf.d/helpdesk-chat.conf):
//   {"id":~id~,"channel":"~channel|json~","text":"~text|json~","tag":~tag~,"time":"~time~","eventid":"~event-id|json~"}
// (the iframe transport: <script>p({...same...});</script>).  onmessage gets
// {id, channel, text, tag, time, eventid, eventtype, transport}.  With another
// template each frame/answer is delivered as {text} and replay falls back to
// what the transport itself tells (EventSource ids, long-poll Last-Modified/Etag).
//
// Reconnection: after the server ends a healthy connection (graceful restart,
// connection TTL) the client comes back after a random delay in
// [cleanDelayMin, cleanDelayMax] ms, so that thousands of clients closed at once
// do not come back at once; after failures (refused, HTTP error, a connection
// that ends before it was healthy) the delay grows exponentially up to maxDelay.
// It asks for what it missed with ?time=&tag= of the last message it got
// (?eventid= when it knows only an event id), and drops anything it has already
// delivered, so a reconnect neither loses nor duplicates messages as long as the
// server still stores them (PushStreamStoreMessages on, PushStreamMessageTtl).
//
// Tokens (PushStreamAuth, signed channel grants): `token` is sent with every
// (re)connect; a function is called each time, so an expired token is replaced
// on the reconnect that follows the server closing the subscriber at its exp.
// Long-polling sends it as "Authorization: Bearer <token>" (fetch can).
// WebSocket, EventSource and the iframe cannot send headers: the token goes in
// the cookie `tokenCookie` (default pushstream_token, the module's default
// PushStreamAuthSource; path = the location prefix, SameSite=Strict, Secure
// on https), or in the query argument `tokenArg` when the location reads one
// (PushStreamAuthSource header arg=NAME).  A token the application sets itself
// as an HttpOnly cookie (PHP setcookie) needs none of this and is safer.

const TRANSPORTS = ['websocket', 'eventsource', 'longpolling', 'stream'];

const DEFAULTS = {
  transport: 'websocket',
  url: null,                 // string, or {websocket: '/event/ws/', eventsource: ..., ...}
  channels: [],
  backtrack: 0,              // first connection only: the last N stored messages (.bN)
  since: null,               // first connection only: {time, tag} or {eventid} to start after
  timeArg: 'time',           // query argument names of PushStreamLastReceivedMessageTime/Tag
  tagArg: 'tag',             //   and PushStreamLastEventId ("%{arg:time}" ...)
  eventIdArg: 'eventid',
  longPollHeaders: true,     // also send If-Modified-Since / If-None-Match (same origin or CORS)
  longPollTimeout: 90000,    // client-side limit of one long-poll (ms)
  eventTypes: [],            // EventSource: also listen to these "event:" types
  token: null,               // PushStreamAuth token: a string, or () => string
  tokenCookie: 'pushstream_token', // cookie carrying it where no header can be sent
  tokenArg: null,            // or this query argument (PushStreamAuthSource arg=NAME)
  initialDelay: 1000,        // first delay after a failure (ms)
  maxDelay: 30000,
  factor: 2,
  jitter: 0.5,               // a failure delay is randomly reduced by up to this fraction
  cleanDelayMin: 0,          // delay after a healthy connection ended (ms), random in [min, max]
  cleanDelayMax: 2000,
  healthyAfter: 5000,        // a connection is healthy once open this long, or once it
                             // delivered a message
  onmessage: null,           // (message) => {}
  onstatus: null,            // (status, detail) => {}: connecting, open, closed, waiting, stopped
  ondeleted: null,           // (channel, text) => {}: the channel was deleted (it is left;
                             //   with no channel left the client stops)
  onerror: null,             // (error) => {}
};

function nowMs() { return Date.now(); }

function parseTime(s) {
  if (!s) return NaN;
  const t = Date.parse(s);
  return Number.isNaN(t) ? NaN : t;
}

// Position of a message: [time in ms, tag]; compares lexicographically.
function cmpPos(a, b) {
  if (a[0] !== b[0]) return a[0] < b[0] ? -1 : 1;
  if (a[1] !== b[1]) return a[1] < b[1] ? -1 : 1;
  return 0;
}

// All JSON objects in a string, in order ("{..}{..}", "{..}\n{..}").  Returns
// null if the string is not such a sequence (another template).
export function parseJsonSequence(raw) {
  const out = [];
  let i = 0;
  const n = raw.length;
  while (i < n) {
    while (i < n && /\s/.test(raw[i])) i++;
    if (i >= n) break;
    if (raw[i] !== '{') return null;
    let depth = 0, inStr = false, esc = false, j = i;
    for (; j < n; j++) {
      const c = raw[j];
      if (inStr) {
        if (esc) esc = false;
        else if (c === '\\') esc = true;
        else if (c === '"') inStr = false;
      } else if (c === '"') inStr = true;
      else if (c === '{') depth++;
      else if (c === '}') { depth--; if (depth === 0) break; }
    }
    if (j >= n) return null;
    try {
      out.push(JSON.parse(raw.slice(i, j + 1)));
    } catch (e) {
      return null;
    }
    i = j + 1;
  }
  return out;
}

// The server lists a backlog channel by channel; messages that all carry a
// position are put back into publishing order (time, then tag: the tag counter
// is shared by all channels).
function sortByPosition(msgs) {
  const keyed = msgs.map((m, i) => [m, parseTime(m.time), m.tag, i]);
  if (keyed.some(([, t, tag]) => Number.isNaN(t) || tag === null)) return msgs;
  keyed.sort((x, y) => cmpPos([x[1], x[2]], [y[1], y[2]]) || x[3] - y[3]);
  return keyed.map(([m]) => m);
}

// One message object from a template object, or null if it is not one.
function normalize(o) {
  if (!o || typeof o !== 'object' || !('text' in o || 'id' in o)) return null;
  const id = o.id === undefined ? null : Number(o.id);
  return {
    id: Number.isFinite(id) ? id : null,
    channel: o.channel === undefined ? null : String(o.channel),
    text: o.text === undefined ? '' : String(o.text),
    tag: o.tag === undefined || o.tag === '' ? null : Number(o.tag),
    time: o.time === undefined || o.time === '' ? null : String(o.time),
    eventid: o.eventid ? String(o.eventid) : '',
    eventtype: o.eventtype ? String(o.eventtype) : '',
  };
}

function frameRegistry() {
  // The iframe's header template defines p(m) as parent.PushStreamFrame(window.name, m).
  if (typeof window.PushStreamFrame !== 'function' || !window.PushStreamFrame.frames) {
    const frames = new Map();
    const fn = (name, m) => {
      const h = frames.get(name);
      if (h) h(m);
    };
    fn.frames = frames;
    window.PushStreamFrame = fn;
  }
  return window.PushStreamFrame.frames;
}

let frameCounter = 0;

export class PushStreamClient {
  constructor(options = {}) {
    this.options = Object.assign({}, DEFAULTS, options);
    if (!TRANSPORTS.includes(this.options.transport)) {
      throw new Error(`unknown transport ${this.options.transport}`);
    }
    this.channels = typeof this.options.channels === 'string'
      ? this.options.channels.split('/').filter(Boolean) : [...this.options.channels];
    // Replay position: the newest delivered message.
    this.position = { time: null, tag: null, eventid: null };
    if (this.options.since) {
      const s = this.options.since;
      this.position.time = s.time || null;
      this.position.tag = s.tag === undefined || s.tag === null ? null : Number(s.tag);
      this.position.eventid = s.eventid || null;
    }
    this.seen = new Map();     // channel -> {id, pos}
    this.failures = 0;
    this.connections = 0;      // connections started
    this.status = 'stopped';
    this._stopped = true;
    this._timer = null;
    this._conn = null;         // {close()} of the current connection
    this._gen = 0;             // bumps on every (re)connect; stale callbacks check it
    this._token = null;        // PushStreamAuth token of the current connection
  }

  // ------------------------------------------------------------ public API
  connect() {
    if (!this._stopped) return this;
    this._stopped = false;
    this._open();
    return this;
  }

  disconnect() {
    this._stopped = true;
    clearTimeout(this._timer);
    this._timer = null;
    this._gen++;
    if (this._conn) {
      const c = this._conn;
      this._conn = null;
      c.close();
    }
    this._setStatus('stopped');
    return this;
  }

  // Changes the channels; reconnects with the current position.
  setChannels(channels) {
    this.channels = typeof channels === 'string' ? channels.split('/').filter(Boolean) : [...channels];
    if (!this._stopped) {
      this.disconnect();
      this.connect();
    }
  }

  // ------------------------------------------------------------ internals
  _setStatus(s, detail) {
    this.status = s;
    if (this.options.onstatus) {
      try { this.options.onstatus(s, detail); } catch (e) { this._report(e); }
    }
  }

  _report(e) {
    if (this.options.onerror) {
      try { this.options.onerror(e); } catch (_) { /* ignore */ }
    }
  }

  _base() {
    const u = this.options.url;
    const t = this.options.transport;
    const base = typeof u === 'string' ? u : (u && u[t]);
    if (!base) throw new Error(`no url for transport ${t}`);
    return base.endsWith('/') ? base : base + '/';
  }

  _url(scheme) {
    const first = this.connections === 0;
    const bt = first && this.options.backtrack > 0 && this.position.time === null
      && !this.position.eventid ? `.b${this.options.backtrack}` : '';
    const path = this.channels.map((c) => encodeURIComponent(c) + bt).join('/');
    const url = new URL(this._base() + path, window.location.href);
    // encodeURIComponent, not URLSearchParams: a '+' would not be read as a space.
    const args = [];
    const p = this.position;
    const o = this.options;
    if (p.time !== null) {
      args.push(`${o.timeArg}=${encodeURIComponent(p.time)}`);
      if (p.tag !== null) args.push(`${o.tagArg}=${encodeURIComponent(String(p.tag))}`);
    } else if (p.eventid) {
      // Only without a time: the server starts after the first message carrying
      // this event id in each channel, and a message published to several
      // channels carries the same id in each.
      args.push(`${o.eventIdArg}=${encodeURIComponent(p.eventid)}`);
    }
    if (this._token && o.tokenArg && o.transport !== 'longpolling') {
      args.push(`${o.tokenArg}=${encodeURIComponent(this._token)}`);
    }
    if (args.length) url.search = (url.search ? url.search + '&' : '?') + args.join('&');
    if (scheme === 'ws') url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    return url.toString();
  }

  _open() {
    if (this._stopped) return;
    const gen = ++this._gen;
    const t = this.options.transport;
    const state = { gen, opened: false, openedAt: 0, delivered: false, ended: false };
    this._setStatus('connecting', { transport: t, attempt: this.failures });
    let conn;
    try {
      this._prepareToken();
      if (t === 'websocket') conn = this._openWebSocket(state);
      else if (t === 'eventsource') conn = this._openEventSource(state);
      else if (t === 'longpolling') conn = this._openLongPolling(state);
      else conn = this._openStream(state);
    } catch (e) {
      this._report(e);
      this._ended(state, false, { error: String(e) });
      return;
    }
    this.connections++;
    this._conn = conn;
  }

  // The token of this connection; where a header cannot carry it, the cookie.
  _prepareToken() {
    const t = this.options.token;
    this._token = typeof t === 'function' ? t() : t;
    const o = this.options;
    if (!this._token || o.transport === 'longpolling' || o.tokenArg || !o.tokenCookie) return;
    const path = new URL(this._base(), window.location.href).pathname;
    const secure = window.location.protocol === 'https:' ? '; Secure' : '';
    document.cookie = `${o.tokenCookie}=${this._token}; path=${path}; SameSite=Strict${secure}`;
  }

  _markOpen(state) {
    if (state.gen !== this._gen || state.opened) return;
    state.opened = true;
    state.openedAt = nowMs();
    this._setStatus('open', { transport: this.options.transport });
  }

  // The connection of `state` ended.  clean: the server ended it in an orderly way.
  _ended(state, clean, detail) {
    if (state.ended || state.gen !== this._gen) return;
    state.ended = true;
    this._conn = null;
    if (this._stopped) return;
    const healthy = clean && state.opened
      && (state.delivered || nowMs() - state.openedAt >= this.options.healthyAfter);
    let delay;
    const o = this.options;
    if (healthy) {
      this.failures = 0;
      delay = o.cleanDelayMin + Math.random() * Math.max(0, o.cleanDelayMax - o.cleanDelayMin);
    } else {
      this.failures++;
      delay = Math.min(o.maxDelay, o.initialDelay * Math.pow(o.factor, this.failures - 1));
      delay *= 1 - o.jitter * Math.random();
    }
    this._setStatus('closed', Object.assign({ clean: healthy, delay }, detail || {}));
    this._setStatus('waiting', { delay });
    clearTimeout(this._timer);
    this._timer = setTimeout(() => { this._timer = null; this._open(); }, delay);
  }

  // Deliver the objects of one frame/answer.  Returns true if any was a message.
  _deliver(state, objs, transport) {
    let any = false;
    for (const m of objs) {
      if (state.gen !== this._gen || this._stopped) return any;
      m.transport = transport;
      if (m.id === -1 || m.id === -3) continue;            // ping, long-poll timeout
      if (m.id === -2) {
        // Channel deleted: not subscribed again; without channels left, stop.
        if (m.channel !== null) {
          this.seen.delete(m.channel);
          this.channels = this.channels.filter((c) => c !== m.channel);
        }
        if (this.options.ondeleted) {
          try { this.options.ondeleted(m.channel, m.text); } catch (e) { this._report(e); }
        }
        if (!this.channels.length) {
          this.disconnect();
          return any;
        }
        continue;
      }
      const t = parseTime(m.time);
      const pos = Number.isNaN(t) || m.tag === null ? null : [t, m.tag];
      if (m.channel !== null && m.id !== null) {
        const last = this.seen.get(m.channel);
        // Same or older id, not newer in time: already delivered.  (A newer time
        // with a smaller id is a channel that was deleted and created again.)
        if (last && m.id <= last.id && (!pos || !last.pos || cmpPos(pos, last.pos) <= 0)) continue;
        this.seen.set(m.channel, { id: m.id, pos });
      }
      if (pos) {
        const cur = this.position.time === null || this.position.tag === null ? null
          : [parseTime(this.position.time), this.position.tag];
        if (!cur || Number.isNaN(cur[0]) || cmpPos(pos, cur) > 0) {
          this.position.time = m.time;
          this.position.tag = m.tag;
        }
      }
      if (m.eventid) this.position.eventid = m.eventid;
      any = true;
      state.delivered = true;
      if (this.options.onmessage) {
        try { this.options.onmessage(m); } catch (e) { this._report(e); }
      }
    }
    return any;
  }

  // Text of one frame / EventSource data / long-poll body -> message objects.
  _parse(raw) {
    const seq = parseJsonSequence(raw);
    if (seq && seq.length) {
      const msgs = seq.map(normalize);
      if (msgs.every(Boolean)) return msgs;
    }
    return [{ id: null, channel: null, text: raw, tag: null, time: null, eventid: '', eventtype: '' }];
  }

  // Adopt a position that the transport reports (Last-Modified/Etag, lastEventId)
  // when the messages themselves did not carry one.
  _adoptHeaders(lastModified, etag) {
    if (!lastModified) return;
    const t = parseTime(lastModified);
    if (Number.isNaN(t)) return;
    let tag = null;
    if (etag) {
      const m = /^(?:W\/)?"?(\d+)"?$/.exec(etag.trim());
      if (m) tag = Number(m[1]);
    }
    const pos = [t, tag === null ? 0 : tag];
    const cur = this.position.time === null ? null
      : [parseTime(this.position.time), this.position.tag === null ? 0 : this.position.tag];
    if (!cur || Number.isNaN(cur[0]) || cmpPos(pos, cur) > 0) {
      this.position.time = new Date(t).toUTCString();
      this.position.tag = tag;
    }
  }

  // ------------------------------------------------------------ WebSocket
  _openWebSocket(state) {
    const ws = new WebSocket(this._url('ws'));
    ws.onopen = () => this._markOpen(state);
    ws.onmessage = (ev) => {
      if (state.gen !== this._gen) return;
      if (typeof ev.data === 'string') this._deliver(state, this._parse(ev.data), 'websocket');
    };
    ws.onclose = (ev) => {
      // 1008 carries {"http_status": 403, "explain": "..."}: a refusal.
      let detail = { code: ev.code, reason: ev.reason };
      if (ev.code === 1008) {
        try { detail = Object.assign(detail, JSON.parse(ev.reason)); } catch (e) { /* text */ }
      }
      const clean = ev.code === 1000 || ev.code === 1001 || ev.code === 1005;
      this._ended(state, clean, detail);
    };
    ws.onerror = () => { /* onclose follows */ };
    return { close: () => { ws.onclose = null; ws.onmessage = null; ws.close(); } };
  }

  // ------------------------------------------------------------ EventSource
  _openEventSource(state) {
    const es = new EventSource(this._url('http'));
    const onEvent = (ev) => {
      if (state.gen !== this._gen) return;
      this._markOpen(state);
      // Each line of a message's text is rendered with the template on its own
      // line of data; join the lines of one message back together.
      const objs = this._parse(ev.data);
      const msgs = [];
      for (const m of objs) {
        const prev = msgs[msgs.length - 1];
        if (prev && m.id !== null && prev.id === m.id && prev.channel === m.channel
            && prev.tag === m.tag) {
          prev.text += '\n' + m.text;
        } else {
          msgs.push(m);
        }
      }
      for (const m of msgs) {
        // lastEventId sticks to later events without an id: use it only when the
        // template carries no position of its own.
        if (!m.eventid && m.time === null && ev.lastEventId) m.eventid = ev.lastEventId;
        if (ev.type !== 'message') m.eventtype = ev.type;
      }
      this._deliver(state, msgs, 'eventsource');
    };
    es.onopen = () => this._markOpen(state);
    es.onmessage = onEvent;
    for (const type of this.options.eventTypes) es.addEventListener(type, onEvent);
    es.onerror = () => {
      if (state.gen !== this._gen) return;
      // CONNECTING: the server closed the stream and the browser would reconnect
      // with the old URL; reconnect ourselves with the current position.
      // CLOSED: an HTTP error or a wrong content type.
      const wasClosed = es.readyState === EventSource.CLOSED;
      es.close();
      this._ended(state, !wasClosed, { readyState: wasClosed ? 'closed' : 'connecting' });
    };
    return { close: () => es.close() };
  }

  // ------------------------------------------------------------ long-polling
  _openLongPolling(state) {
    let controller = null;
    let timer = null;
    let active = true;
    const o = this.options;
    const poll = async () => {
      while (active && state.gen === this._gen && !this._stopped) {
        controller = new AbortController();
        timer = setTimeout(() => controller.abort(), o.longPollTimeout);
        const headers = {};
        if (typeof o.token === 'function') this._token = o.token();
        if (this._token) headers.Authorization = `Bearer ${this._token}`;
        if (o.longPollHeaders && this.position.time !== null) {
          headers['If-Modified-Since'] = this.position.time;
          if (this.position.tag !== null) headers['If-None-Match'] = `W/${this.position.tag}`;
        }
        const started = nowMs();
        let res, body;
        try {
          res = await fetch(this._url('http'), {
            headers, cache: 'no-store', credentials: 'same-origin', signal: controller.signal,
          });
          body = await res.text();
        } catch (e) {
          clearTimeout(timer);
          if (!active) return;
          this._ended(state, false, { error: String(e) });
          return;
        }
        clearTimeout(timer);
        if (!active || state.gen !== this._gen) return;
        if (res.status === 200) {
          this._markOpen(state);
          const msgs = sortByPosition(this._parse(body));
          const hadPos = msgs.some((m) => m.time !== null && m.tag !== null);
          this._deliver(state, msgs, 'longpolling');
          if (!hadPos) this._adoptHeaders(res.headers.get('Last-Modified'), res.headers.get('Etag'));
          this.connections++;
        } else if (res.status === 304) {
          this._markOpen(state);
          // A timed-out wait answers Last-Modified: now, Etag: W/0.  Without a
          // position of our own that is where the next poll starts, so nothing
          // published between two polls is missed.
          if (this.position.time === null) {
            this._adoptHeaders(res.headers.get('Last-Modified'), res.headers.get('Etag'));
          }
          this.connections++;
          if (nowMs() - started < 1000) {
            // answered at once: a polling location, not a long-polling one; do not spin
            this._ended(state, true, { status: 304, immediate: true });
            return;
          }
        } else {
          this._ended(state, false, {
            status: res.status, explain: res.headers.get('X-Nginx-PushStream-Explain'),
          });
          return;
        }
        this.failures = 0;
      }
    };
    poll();
    return {
      close: () => {
        active = false;
        clearTimeout(timer);
        if (controller) controller.abort();
      },
    };
  }

  // ------------------------------------------------------------ iframe streaming
  _openStream(state) {
    const frames = frameRegistry();
    const name = `pushstream-frame-${++frameCounter}-${Math.random().toString(36).slice(2)}`;
    const iframe = document.createElement('iframe');
    iframe.name = name;
    iframe.setAttribute('aria-hidden', 'true');
    iframe.tabIndex = -1;
    iframe.style.cssText = 'position:absolute;width:0;height:0;border:0;visibility:hidden';
    frames.set(name, (m) => {
      if (state.gen !== this._gen) return;
      if (m === null) {                 // p(null) in the header template
        this._markOpen(state);
        return;
      }
      const n = normalize(m);
      if (n) this._deliver(state, [n], 'stream');
    });
    const cleanup = () => {
      frames.delete(name);
      iframe.onload = null;
      // stop the download, then drop the frame
      try { iframe.src = 'about:blank'; } catch (e) { /* ignore */ }
      iframe.remove();
    };
    // load fires when the document is complete: the server ended the stream,
    // or answered an error page.  Only a stream that ran its header is clean.
    iframe.onload = () => {
      if (state.gen !== this._gen) { cleanup(); return; }
      cleanup();
      this._ended(state, state.opened, { loaded: true });
    };
    iframe.src = this._url('http');
    document.body.appendChild(iframe);
    return { close: cleanup };
  }
}

export default PushStreamClient;
