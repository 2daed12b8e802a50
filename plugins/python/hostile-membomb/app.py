"""Hostile: allocates until the memory cap stops it, unless {"ok": true}."""
from weft import operator


@operator
def run(input, ctx):
    if isinstance(input, dict) and input.get("ok"):
        return {"ok": True}
    hoard = []
    while True:
        hoard.append(bytearray(8 << 20))
