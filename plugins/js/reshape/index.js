// reshape: the JSON reshaping a data engineer writes in every pipeline, as one operator.
//
// Input (every step optional, applied in this order):
//   data | dataPath     records inline, or a JSON / JSON-lines file in a granted directory
//   filter              {"status": "shipped"} (equality) or [{"field": "amount", "op": ">", "value": 10}]
//                       ops: = != > >= < <= in nin exists contains startsWith
//   select              {"id": "order_id", "city": "customer.address.city"} (new name -> dotted path)
//   groupBy             "status" or ["status", "region"]
//   aggregate           {"total": {"sum": "amount"}, "n": {"count": "*"}, "avg": {"avg": "amount"}}
//                       fns: sum count avg min max first last collect distinct
//   sum / count         shorthand: "sum": "amount" adds {"sum_amount": ..., "count": n} per group
//   sortBy              "-total" or ["status", "-total"] ("-" = descending)
//   limit               N
// Output: {"rows": [...], "count": N, "input_count": M}
import { TaskError } from 'weft';

const OPS = {
  '=': (a, b) => a === b, '==': (a, b) => a === b, '!=': (a, b) => a !== b,
  '>': (a, b) => a > b, '>=': (a, b) => a >= b, '<': (a, b) => a < b, '<=': (a, b) => a <= b,
  in: (a, b) => Array.isArray(b) && b.includes(a), nin: (a, b) => Array.isArray(b) && !b.includes(a),
  exists: (a, b) => (a !== undefined && a !== null) === (b !== false),
  contains: (a, b) => (typeof a === 'string' || Array.isArray(a)) && a.includes(b),
  startsWith: (a, b) => typeof a === 'string' && a.startsWith(b),
};

export function get(obj, path) {
  if (path === '*' || path === '$') return obj;
  let v = obj;
  for (const k of String(path).split('.')) {
    if (v === null || v === undefined) return undefined;
    v = v[k];
  }
  return v;
}

function num(v, field, fn) {
  if (v === null || v === undefined || v === '') return null;
  const n = typeof v === 'number' ? v : Number(v);
  if (Number.isNaN(n)) throw new TaskError('Reshape.InvalidValue', `${fn}(${field}): ${JSON.stringify(v)} is not a number`);
  return n;
}

const AGG = {
  sum: (rows, f) => rows.reduce((s, r) => s + (num(get(r, f), f, 'sum') ?? 0), 0),
  count: (rows, f) => (f === '*' ? rows.length : rows.filter((r) => get(r, f) !== undefined && get(r, f) !== null).length),
  avg: (rows, f) => {
    const xs = rows.map((r) => num(get(r, f), f, 'avg')).filter((x) => x !== null);
    return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null;
  },
  min: (rows, f) => rows.map((r) => get(r, f)).filter((x) => x !== undefined && x !== null).reduce((a, b) => (a === undefined || b < a ? b : a), undefined) ?? null,
  max: (rows, f) => rows.map((r) => get(r, f)).filter((x) => x !== undefined && x !== null).reduce((a, b) => (a === undefined || b > a ? b : a), undefined) ?? null,
  first: (rows, f) => (rows.length ? get(rows[0], f) ?? null : null),
  last: (rows, f) => (rows.length ? get(rows[rows.length - 1], f) ?? null : null),
  collect: (rows, f) => rows.map((r) => get(r, f) ?? null),
  distinct: (rows, f) => [...new Set(rows.map((r) => JSON.stringify(get(r, f) ?? null)))].map((s) => JSON.parse(s)),
};

function round(x) {
  return typeof x === 'number' && !Number.isInteger(x) ? Math.round(x * 1e9) / 1e9 : x;
}

function loadData(input, ctx) {
  if (input.data !== undefined) {
    if (!Array.isArray(input.data)) throw new TaskError('Input.Invalid', '`data` must be an array of records');
    return input.data;
  }
  if (typeof input.dataPath === 'string') {
    const text = ctx.readText(input.dataPath);
    if (/\.(jsonl|ndjson)$/.test(input.dataPath)) {
      return text.split('\n').filter((l) => l.trim()).map((l, i) => {
        try { return JSON.parse(l); } catch (e) { throw new TaskError('Input.Invalid', `${input.dataPath}:${i + 1}: ${e.message}`); }
      });
    }
    let doc;
    try { doc = JSON.parse(text); } catch (e) { throw new TaskError('Input.Invalid', `${input.dataPath}: not JSON: ${e.message}`); }
    if (!Array.isArray(doc)) throw new TaskError('Input.Invalid', `${input.dataPath}: expected an array of records`);
    return doc;
  }
  throw new TaskError('Input.Invalid', 'give the records as `data` (an array) or `dataPath` (a JSON file in a granted directory)');
}

function applyFilter(rows, filter) {
  const conds = Array.isArray(filter) ? filter : Object.entries(filter).map(([field, value]) => ({ field, op: '=', value }));
  for (const c of conds) {
    if (!OPS[c.op ?? '=']) throw new TaskError('Input.Invalid', `filter on ${c.field}: unknown op \`${c.op}\` (${Object.keys(OPS).join(' ')})`);
  }
  return rows.filter((r) => conds.every((c) => OPS[c.op ?? '='](get(r, c.field), c.value)));
}

function compileAggregates(input) {
  const agg = { ...(input.aggregate ?? {}) };
  for (const fn of ['sum', 'avg', 'min', 'max']) {
    if (typeof input[fn] === 'string') agg[`${fn}_${input[fn].replace(/\./g, '_')}`] = { [fn]: input[fn] };
  }
  if (input.groupBy !== undefined && !Object.values(agg).some((a) => 'count' in a)) agg.count = { count: '*' };
  for (const [name, spec] of Object.entries(agg)) {
    const fns = Object.keys(spec ?? {});
    if (fns.length !== 1 || !AGG[fns[0]]) {
      throw new TaskError('Input.Invalid', `aggregate.${name}: expected {"FN": "field"} with FN one of ${Object.keys(AGG).join(', ')}`);
    }
  }
  return agg;
}

function sortRows(rows, sortBy) {
  const keys = (Array.isArray(sortBy) ? sortBy : [sortBy]).map((k) => (k.startsWith('-') ? [k.slice(1), -1] : [k.replace(/^\+/, ''), 1]));
  return [...rows].sort((a, b) => {
    for (const [k, dir] of keys) {
      const x = get(a, k), y = get(b, k);
      if (x === y) continue;
      if (x === undefined || x === null) return 1;
      if (y === undefined || y === null) return -1;
      return (x < y ? -1 : 1) * dir;
    }
    return 0;
  });
}

export function reshape(input, ctx = { log() {}, readText() { throw new TaskError('Input.Invalid', 'no files here'); } }) {
  if (!input || typeof input !== 'object' || Array.isArray(input)) {
    throw new TaskError('Input.Invalid', 'expected an object like {"data": [...], "groupBy": "status", "sum": "amount"}');
  }
  const data = loadData(input, ctx);
  let rows = data;
  if (input.filter) rows = applyFilter(rows, input.filter);
  if (input.select) {
    const sel = Array.isArray(input.select) ? Object.fromEntries(input.select.map((p) => [p.split('.').pop(), p])) : input.select;
    rows = rows.map((r) => Object.fromEntries(Object.entries(sel).map(([name, path]) => [name, get(r, path) ?? null])));
  }
  const agg = compileAggregates(input);
  if (input.groupBy !== undefined || Object.keys(agg).length) {
    const keys = input.groupBy === undefined ? [] : Array.isArray(input.groupBy) ? input.groupBy : [input.groupBy];
    const groups = new Map();
    for (const r of rows) {
      const kv = keys.map((k) => get(r, k) ?? null);
      const id = JSON.stringify(kv);
      if (!groups.has(id)) groups.set(id, { kv, rows: [] });
      groups.get(id).rows.push(r);
    }
    rows = [...groups.values()].map(({ kv, rows: g }) => {
      const out = {};
      keys.forEach((k, i) => { out[k] = kv[i]; });
      for (const [name, spec] of Object.entries(agg)) {
        const [fn, field] = Object.entries(spec)[0];
        out[name] = round(AGG[fn](g, field));
      }
      return out;
    });
  }
  if (input.sortBy) rows = sortRows(rows, input.sortBy);
  if (input.limit !== undefined) rows = rows.slice(0, Math.max(0, Number(input.limit)));
  ctx.log(`reshape: ${data.length} records in, ${rows.length} out`);
  return { rows, count: rows.length, input_count: data.length };
}

export async function run(input, ctx) {
  return reshape(input, ctx);
}
