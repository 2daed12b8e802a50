// weft's JavaScript guest SDK. An operator is a module exporting
//
//   export async function run(input, ctx) { ... return output }     // task world
//   export function poke(ctx) { return true }                        // sensor world
//
// `weft plugin build DIR` (or scripts/polyglot.sh) wraps it with this SDK and makes a component
// with componentize-js. `input` is the parsed input JSON; the returned value is serialized.
// Throw `new TaskError(error, cause)` for an ASL/Airflow error name; any other exception becomes
// an error named after its class (`TypeError`, `RangeError`...), like AWS Lambda. Files outside
// the grant and undeclared HTTP hosts raise `Sandbox.PermissionDenied`.
//
// ctx: task, attempt, params, raw; log(msg, level) / debug / info / warn / error; heartbeat();
// secret(name); readText(path) / readBytes / readJson / writeText / writeBytes / listDir / exists;
// http({ method, url, headers, body, json, timeoutMs, check }) -> { status, headers, body,
// text(), json(), ok }; get(url, opts); post(url, opts); fetch(url, init) (a Promise).

import { log as hostLog, heartbeat as hostHeartbeat, getSecret } from 'weft:operator/host@0.1.0';
import { send } from 'weft:operator/http@0.1.0';
import { getDirectories } from 'wasi:filesystem/preopens@0.2.12';

export class TaskError extends Error {
  constructor(error, cause = '') {
    super(`${error}: ${cause}`);
    this.name = 'TaskError';
    this.error = String(error);
    this.cause = String(cause);
  }
}

const LEVELS = { trace: 'trace', debug: 'debug', info: 'info', warn: 'warn', warning: 'warn', error: 'error' };
const DENIED = new Set(['access', 'not-permitted', 'read-only']);
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function codeOf(e) {
  if (typeof e === 'string') return e;
  if (e && typeof e.payload === 'string') return e.payload;
  if (e && e.payload && typeof e.payload.tag === 'string') return e.payload.tag;
  return String((e && e.message) || e);
}

function fileError(e, path, action) {
  const code = codeOf(e);
  if (DENIED.has(code)) {
    return new TaskError('Sandbox.PermissionDenied', `cannot ${action} ${path}: the operator's grant does not cover it (${code})`);
  }
  if (code === 'no-entry') return new TaskError('File.NotFound', `cannot ${action} ${path}: no such file or directory`);
  if (code === 'is-directory') return new TaskError('File.IsADirectory', `cannot ${action} ${path}: it is a directory`);
  return new TaskError('File.Error', `cannot ${action} ${path}: ${code}`);
}

let preopens = null;
function resolve(path, action) {
  if (preopens === null) preopens = getDirectories().map(([d, p]) => [d, p.replace(/\/+$/, '') || '/']);
  const p = String(path);
  let best = null;
  for (const [d, guest] of preopens) {
    const inside = guest === '/' ? p.startsWith('/') : p === guest || p.startsWith(guest + '/');
    if (inside && (!best || guest.length > best[1].length)) best = [d, guest];
  }
  if (!best) {
    throw new TaskError('Sandbox.PermissionDenied', `cannot ${action} ${p}: no directory granted to this operator contains it`);
  }
  let rel = p.slice(best[1].length).replace(/^\/+/, '');
  return [best[0], rel === '' ? '.' : rel];
}

function openFile(path, write, action) {
  const [dir, rel] = resolve(path, action);
  try {
    return dir.openAt(
      { symlinkFollow: false },
      rel,
      write ? { create: true, truncate: true } : {},
      write ? { write: true } : { read: true },
    );
  } catch (e) {
    throw fileError(e, path, action);
  }
}

function readAll(path) {
  const f = openFile(path, false, 'read');
  try {
    const chunks = [];
    let offset = 0n;
    let total = 0;
    for (;;) {
      const [bytes, end] = f.read(1n << 20n, offset);
      if (bytes.length) {
        chunks.push(bytes);
        total += bytes.length;
        offset += BigInt(bytes.length);
      }
      if (end || bytes.length === 0) break;
    }
    const out = new Uint8Array(total);
    let at = 0;
    for (const c of chunks) { out.set(c, at); at += c.length; }
    return out;
  } catch (e) {
    if (e instanceof TaskError) throw e;
    throw fileError(e, path, 'read');
  }
}

class Response {
  constructor(r) {
    this.status = r.status;
    this.headers = r.headers;
    this.body = r.body;
  }
  get ok() { return this.status >= 200 && this.status < 300; }
  text() { return decoder.decode(this.body); }
  json() { return JSON.parse(this.text()); }
  header(name) {
    const n = name.toLowerCase();
    const h = this.headers.find(([k]) => k.toLowerCase() === n);
    return h ? h[1] : undefined;
  }
}

export class Context {
  constructor(raw) {
    this.raw = raw && typeof raw === 'object' ? raw : {};
    this.task = String(this.raw.task ?? '');
    this.attempt = Number(this.raw.attempt ?? 1);
    this.params = this.raw.params ?? {};
  }
  log(msg, level = 'info') {
    const lv = LEVELS[String(level).toLowerCase()];
    if (!lv) throw new TypeError(`unknown log level ${level} (trace, debug, info, warn, error)`);
    hostLog(lv, typeof msg === 'string' ? msg : JSON.stringify(msg));
  }
  debug(m) { this.log(m, 'debug'); }
  info(m) { this.log(m, 'info'); }
  warn(m) { this.log(m, 'warn'); }
  error(m) { this.log(m, 'error'); }
  heartbeat() { hostHeartbeat(); }
  secret(name) {
    try {
      return getSecret(name);
    } catch (e) {
      const reason = codeOf(e);
      const i = reason.indexOf(': ');
      if (i > 0 && !reason.slice(0, i).includes(' ')) throw new TaskError(reason.slice(0, i), reason.slice(i + 2));
      throw new TaskError('Sandbox.PermissionDenied', reason);
    }
  }
  readBytes(path) { return readAll(path); }
  readText(path) { return decoder.decode(readAll(path)); }
  readJson(path) {
    const t = this.readText(path);
    try { return JSON.parse(t); } catch (e) { throw new TaskError('File.InvalidJson', `${path}: ${e.message}`); }
  }
  writeBytes(path, data) {
    const f = openFile(path, true, 'write');
    try {
      let offset = 0n;
      let rest = data;
      while (rest.length) {
        const n = Number(f.write(rest, offset));
        offset += BigInt(n);
        rest = rest.subarray(n);
      }
      return data.length;
    } catch (e) {
      if (e instanceof TaskError) throw e;
      throw fileError(e, path, 'write');
    }
  }
  writeText(path, text) { return this.writeBytes(path, encoder.encode(String(text))); }
  listDir(path) {
    const [dir, rel] = resolve(path, 'list');
    try {
      const d = rel === '.' ? dir : dir.openAt({ symlinkFollow: false }, rel, { directory: true }, { read: true });
      const stream = d.readDirectory();
      const names = [];
      for (let e = stream.readDirectoryEntry(); e; e = stream.readDirectoryEntry()) names.push(e.name);
      return names.sort();
    } catch (e) {
      if (e instanceof TaskError) throw e;
      throw fileError(e, path, 'list');
    }
  }
  exists(path) {
    const [dir, rel] = resolve(path, 'stat');
    try {
      dir.statAt({ symlinkFollow: false }, rel);
      return true;
    } catch (e) {
      if (codeOf(e) === 'no-entry') return false;
      throw fileError(e, path, 'stat');
    }
  }
  http({ method = 'GET', url, headers = {}, body, json, timeoutMs, check = false } = {}) {
    const hs = Array.isArray(headers) ? headers.map(([k, v]) => [String(k), String(v)]) : Object.entries(headers).map(([k, v]) => [k, String(v)]);
    if (json !== undefined) {
      body = JSON.stringify(json);
      if (!hs.some(([k]) => k.toLowerCase() === 'content-type')) hs.push(['content-type', 'application/json']);
    }
    const data = body === undefined || body === null ? undefined : typeof body === 'string' ? encoder.encode(body) : body;
    let r;
    try {
      r = send({ method: String(method).toUpperCase(), url: String(url), headers: hs, body: data, timeoutMs });
    } catch (e) {
      const p = e && e.payload ? e.payload : e;
      throw new TaskError((p && p.error) || 'Http.Error', (p && p.cause) || String(p));
    }
    const resp = new Response(r);
    if (check && !resp.ok) throw new TaskError(`Http.Status${resp.status}`, `${method} ${url} returned ${resp.status}: ${resp.text().slice(0, 200)}`);
    return resp;
  }
  get(url, opts = {}) { return this.http({ ...opts, method: 'GET', url }); }
  post(url, opts = {}) { return this.http({ ...opts, method: 'POST', url }); }
  async fetch(url, init = {}) { return this.http({ ...init, url }); }
}

function toTaskError(e) {
  if (e instanceof TaskError) return e;
  if (e && typeof e.error === 'string' && typeof e.cause === 'string') return new TaskError(e.error, e.cause);
  if (/out of memory/i.test(String(e && e.message !== undefined ? e.message : e))) {
    return new TaskError('Sandbox.MemoryLimit', `the operator ran out of memory: ${String(e && e.message !== undefined ? e.message : e)}`);
  }
  if (e instanceof RangeError && /call stack|recursion/i.test(String(e.message))) {
    return new TaskError('Sandbox.StackOverflow', String(e.message));
  }
  const name = (e && e.constructor && e.constructor.name) || 'Error';
  const msg = e && e.message !== undefined ? e.message : String(e);
  return new TaskError(name === 'Object' ? 'Error' : name, String(msg));
}


function serialize(out) {
  try {
    return JSON.stringify(out === undefined ? null : out);
  } catch (e) {
    throw { error: 'States.TaskFailed', cause: `the operator's result is not JSON-serializable: ${e.message}` };
  }
}

function toWit(e) {
  const t = toTaskError(e);
  return { error: t.error, cause: t.cause };
}

export function makeOperator(mod) {
  const fn = mod.run ?? (mod.default && (mod.default.run ?? mod.default));
  return {
    run(input, ctx) {
      if (typeof fn !== 'function') throw { error: 'States.TaskFailed', cause: 'the module exports no `run(input, ctx)` function' };
      let value;
      try {
        value = input ? JSON.parse(input) : null;
      } catch (e) {
        throw { error: 'States.Runtime', cause: `the input is not JSON: ${e.message}` };
      }
      let c;
      try { c = new Context(ctx ? JSON.parse(ctx) : {}); } catch { c = new Context({}); }
      let out;
      try {
        out = fn(value, c);
      } catch (e) {
        throw toWit(e);
      }
      if (out && typeof out.then === 'function') {
        return out.then(serialize, (e) => { throw toWit(e); });
      }
      return serialize(out);
    },
  };
}

export function makeSensor(mod) {
  const fn = mod.poke ?? (mod.default && (mod.default.poke ?? mod.default));
  return {
    poke(ctx) {
      if (typeof fn !== 'function') throw { error: 'States.TaskFailed', cause: 'the module exports no `poke(ctx)` function' };
      let c;
      try { c = new Context(ctx ? JSON.parse(ctx) : {}); } catch { c = new Context({}); }
      let out;
      try {
        out = fn(c);
      } catch (e) {
        throw toWit(e);
      }
      if (out && typeof out.then === 'function') return out.then(Boolean, (e) => { throw toWit(e); });
      return Boolean(out);
    },
  };
}
