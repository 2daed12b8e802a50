"""file-ready: a sensor. `poke(ctx)` is true once ctx.params["path"] exists in a granted
directory with at least `min_bytes` bytes (default 1) and, when `marker` is set (e.g.
"_SUCCESS"), that marker file exists in the same directory. A path outside the grant is an error
(Sandbox.PermissionDenied), not "not yet"."""

import os

from weft import Context, TaskError, sensor


@sensor
def poke(ctx: Context) -> bool:
    path = ctx.params.get("path")
    if not isinstance(path, str) or not path:
        raise TaskError("Input.Invalid", 'file-ready needs params {"path": "/data/in/FILE"}')
    min_bytes = int(ctx.params.get("min_bytes", 1))
    if not ctx.exists(path):
        ctx.log(f"{path}: not there yet")
        return False
    size = os.stat(path).st_size
    if size < min_bytes:
        ctx.log(f"{path}: {size} bytes, waiting for {min_bytes}")
        return False
    marker = ctx.params.get("marker")
    if marker and not ctx.exists(os.path.join(os.path.dirname(path), marker)):
        ctx.log(f"{path}: waiting for {marker}")
        return False
    ctx.log(f"{path}: ready ({size} bytes)")
    return True
