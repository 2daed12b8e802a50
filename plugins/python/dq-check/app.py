"""dq-check: data-quality checks on a CSV or JSON file in a directory the grant names.

Input:
    {"path": "/data/in/orders.csv", "format": "csv" | "json" | "jsonl" (default: by extension),
     "checks": {"min_rows": 1, "max_rows": 1000000,
                "columns": ["order_id", "amount"],          # must be present
                "max_null_ratio": {"amount": 0.0, "*": 0.5},  # per column, "*" for any other
                "unique": ["order_id"],
                "types": {"amount": "number"}}}              # integer|number|string|boolean|date|timestamp
Output: {"path", "format", "rows", "columns", "schema", "null_ratio", "distinct", "checks": [...],
         "passed": true}. A failed check raises DataQuality.Failed with every failure in the cause.
A null is a missing key, JSON null, or an empty / NA / null / None CSV cell.
"""

import csv
import io
import json
import re

from dateutil import parser as dateparser

from weft import Context, TaskError, operator

NULLS = {"", "na", "n/a", "null", "none", "nan"}
INT = re.compile(r"^[+-]?\d+$")
NUM = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
NUMERIC = {"integer", "number"}


def _is_null(v):
    return v is None or (isinstance(v, str) and v.strip().lower() in NULLS)


def _kind(v):
    """The inferred type of one non-null value."""
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, (list, dict)):
        return "array" if isinstance(v, list) else "object"
    s = str(v).strip()
    if INT.match(s):
        return "integer"
    if NUM.match(s):
        return "number"
    if s.lower() in ("true", "false"):
        return "boolean"
    if DATE.match(s):
        return "date"
    if len(s) >= 10 and s[:4].isdigit() and s[4] == "-":
        try:
            dateparser.isoparse(s)
            return "timestamp"
        except (ValueError, OverflowError):
            pass
    return "string"


def _merge(a, b):
    if a is None:
        return b
    if a == b:
        return a
    if {a, b} <= NUMERIC:
        return "number"
    if {a, b} <= {"date", "timestamp"}:
        return "timestamp"
    return "string"


def _load(ctx, path, fmt):
    text = ctx.read_text(path)
    if fmt == "csv":
        reader = csv.DictReader(io.StringIO(text))
        header = list(reader.fieldnames or [])
        rows = []
        for i, row in enumerate(reader, start=2):
            if None in row:
                raise TaskError("DataQuality.Failed", f"{path}:{i}: the row has more fields than the header ({len(header)})")
            rows.append(row)
        return header, rows
    if fmt == "jsonl":
        rows = []
        for i, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except ValueError as e:
                    raise TaskError("DataQuality.Failed", f"{path}:{i}: not JSON: {e}") from None
    else:
        try:
            doc = json.loads(text)
        except ValueError as e:
            raise TaskError("DataQuality.Failed", f"{path}: not JSON: {e}") from None
        if isinstance(doc, dict):
            doc = next((v for v in doc.values() if isinstance(v, list)), [doc])
        if not isinstance(doc, list):
            raise TaskError("DataQuality.Failed", f"{path}: expected an array of objects")
        rows = doc
    header = []
    for i, r in enumerate(rows):
        if not isinstance(r, dict):
            raise TaskError("DataQuality.Failed", f"{path}: record {i} is not an object")
        for k in r:
            if k not in header:
                header.append(k)
    return header, rows


@operator
def run(input: dict, ctx: Context) -> dict:
    if not isinstance(input, dict) or not isinstance(input.get("path"), str):
        raise TaskError("Input.Invalid", 'expected {"path": "/data/in/FILE.csv", "checks": {...}}')
    path = input["path"]
    fmt = (input.get("format") or path.rsplit(".", 1)[-1]).lower()
    if fmt in ("ndjson",):
        fmt = "jsonl"
    if fmt not in ("csv", "json", "jsonl"):
        raise TaskError("Input.Invalid", f"format `{fmt}`: expected csv, json or jsonl")
    checks = input.get("checks") or {}

    header, rows = _load(ctx, path, fmt)
    n = len(rows)
    nulls = {c: 0 for c in header}
    schema = {c: None for c in header}
    values = {c: set() for c in header}
    for r in rows:
        for c in header:
            v = r.get(c)
            if _is_null(v):
                nulls[c] += 1
                continue
            schema[c] = _merge(schema[c], _kind(v))
            if len(values[c]) <= 100000:
                values[c].add(json.dumps(v, sort_keys=True) if isinstance(v, (list, dict)) else str(v))
    null_ratio = {c: (round(nulls[c] / n, 6) if n else 0.0) for c in header}
    schema = {c: (t or "null") for c, t in schema.items()}
    ctx.log(f"{path}: {n} rows, {len(header)} columns")

    results = []

    def check(name, ok, detail):
        results.append({"check": name, "ok": bool(ok), "detail": detail})

    if "min_rows" in checks:
        m = int(checks["min_rows"])
        check("min_rows", n >= m, f"{n} rows (min {m})")
    if "max_rows" in checks:
        m = int(checks["max_rows"])
        check("max_rows", n <= m, f"{n} rows (max {m})")
    for c in checks.get("columns") or []:
        check(f"column:{c}", c in header, "present" if c in header else f"missing (columns: {', '.join(header) or 'none'})")
    mnr = checks.get("max_null_ratio") or {}
    default = mnr.get("*")
    for c in header:
        limit = mnr.get(c, default)
        if limit is not None:
            r = null_ratio[c]
            check(f"null_ratio:{c}", r <= float(limit), f"{nulls[c]} of {n} null ({r:.4g}, max {float(limit):.4g})")
    for c in mnr:
        if c != "*" and c not in header:
            check(f"null_ratio:{c}", False, "missing column")
    for c in checks.get("unique") or []:
        if c not in header:
            check(f"unique:{c}", False, "missing column")
            continue
        non_null = n - nulls[c]
        check(f"unique:{c}", len(values[c]) == non_null, f"{non_null - len(values[c])} duplicate values")
    for c, want in (checks.get("types") or {}).items():
        got = schema.get(c)
        ok = got == want or (want == "number" and got == "integer") or (want == "timestamp" and got == "date") or (got == "null" and c in header)
        check(f"type:{c}", ok, f"{got or 'missing'} (want {want})")

    failed = [r for r in results if not r["ok"]]
    if failed:
        name = path.rsplit("/", 1)[-1]
        cause = f"{name}: {len(failed)} of {len(results)} checks failed: " + "; ".join(f"{r['check']} {r['detail']}" for r in failed)
        ctx.log(cause, level="warn")
        raise TaskError("DataQuality.Failed", cause)
    return {
        "path": path,
        "format": fmt,
        "rows": n,
        "columns": header,
        "schema": schema,
        "null_ratio": null_ratio,
        "distinct": {c: len(values[c]) for c in header},
        "checks": results,
        "passed": True,
    }
