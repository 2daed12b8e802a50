"""Hostile: loops forever unless {"ok": true} (then echoes), so a normal call still works."""
from weft import operator


@operator
def run(input, ctx):
    if isinstance(input, dict) and input.get("ok"):
        return {"ok": True}
    n = 0
    while True:
        n += 1
