// Test harness for pushstream-client.js: records what each client sees.
import { PushStreamClient, parseJsonSequence } from '../pushstream-client.js';

const clients = new Map();

window.harness = {
  start(name, options) {
    const log = { msgs: [], statuses: [], errors: [], deleted: [] };
    const c = new PushStreamClient(Object.assign({}, options, {
      onmessage: (m) => log.msgs.push(m),
      onstatus: (s, d) => log.statuses.push({ s, at: Date.now(), d: d || null }),
      onerror: (e) => log.errors.push(String(e && e.stack || e)),
      ondeleted: (ch, text) => log.deleted.push({ ch, text }),
    }));
    clients.set(name, { c, log });
    c.connect();
    return true;
  },
  stop(name) {
    const e = clients.get(name);
    if (e) e.c.disconnect();
    return true;
  },
  state(name) {
    const { c, log } = clients.get(name);
    return {
      status: c.status, failures: c.failures, position: c.position,
      msgs: log.msgs, statuses: log.statuses, errors: log.errors, deleted: log.deleted,
      frames: document.querySelectorAll('iframe').length,
    };
  },
  parse(raw) { return parseJsonSequence(raw); },
};
window.harnessReady = true;
