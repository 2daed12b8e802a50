"""Hostile: reads whatever path the input names with plain open() (e.g. /etc/passwd or
/data/in/../../etc/passwd); {"ok": true} returns without touching files."""
from weft import operator


@operator
def run(input, ctx):
    if input.get("ok"):
        return {"ok": True}
    with open(input["path"]) as f:
        return {"stolen": f.read()[:200]}
