// The `weft` module under plain Node (unit tests of an operator, `node --test`): the same
// TaskError and Context shapes, with logs kept in memory, secrets from WEFT_SECRET_<NAME>, files
// from the real file system and HTTP refused unless a test sets `httpHandler`.
import { readFileSync, writeFileSync, readdirSync, existsSync } from 'node:fs';

export class TaskError extends Error {
  constructor(error, cause = '') {
    super(`${error}: ${cause}`);
    this.name = 'TaskError';
    this.error = String(error);
    this.cause = String(cause);
  }
}

export const logs = [];
export const testing = { httpHandler: null };

export class Context {
  constructor(raw = {}) {
    this.raw = raw;
    this.task = String(raw.task ?? 'test');
    this.attempt = Number(raw.attempt ?? 1);
    this.params = raw.params ?? {};
  }
  log(msg, level = 'info') { logs.push([level, typeof msg === 'string' ? msg : JSON.stringify(msg)]); }
  debug(m) { this.log(m, 'debug'); }
  info(m) { this.log(m, 'info'); }
  warn(m) { this.log(m, 'warn'); }
  error(m) { this.log(m, 'error'); }
  heartbeat() {}
  secret(name) {
    // As on the host: only names of ASCII letters, digits and `_` have an environment variable.
    if (!/^[A-Za-z0-9_]+$/.test(name)) throw new TaskError('Secrets.NotFound', `no secret named \`${name}\` (only names of letters, digits and _ come from WEFT_SECRET_<NAME>)`);
    const env = 'WEFT_SECRET_' + name.toUpperCase();
    if (process.env[env] === undefined) throw new TaskError('Secrets.NotFound', `no secret named \`${name}\` (set ${env})`);
    return process.env[env];
  }
  readBytes(p) { return new Uint8Array(readFileSync(p)); }
  readText(p) {
    try { return readFileSync(p, 'utf8'); } catch (e) { throw new TaskError(e.code === 'ENOENT' ? 'File.NotFound' : 'File.Error', `${p}: ${e.message}`); }
  }
  readJson(p) { return JSON.parse(this.readText(p)); }
  writeText(p, t) { writeFileSync(p, t); }
  writeBytes(p, b) { writeFileSync(p, b); }
  listDir(p) { return readdirSync(p).sort(); }
  exists(p) { return existsSync(p); }
  http(req) {
    if (!testing.httpHandler) throw new TaskError('Sandbox.PermissionDenied', `no HTTP in local tests: ${req.url}`);
    return testing.httpHandler(req);
  }
  get(url, o = {}) { return this.http({ ...o, method: 'GET', url }); }
  post(url, o = {}) { return this.http({ ...o, method: 'POST', url }); }
  async fetch(url, init = {}) { return this.http({ ...init, url }); }
}

export function makeOperator() { throw new Error('makeOperator only exists inside a component build'); }
export function makeSensor() { throw new Error('makeSensor only exists inside a component build'); }
