"""Builds the wheel fixtures of the py_packages tests (run from this folder; the output is
checked in, so this only runs when a fixture changes):

wheelhouse/  good, pure-Python wheels: tinypkg 1.0.0 and 0.9.0, tinydep 2.1 (needs tinypkg),
             markerdep 1.0 (needs tinypkg under a marker that holds, colorama under one that
             does not)
hostile/     wheels weft must refuse: native code under pure tags, a platform wheel, a zip-slip
             entry, a symbolic link, a zip bomb, a wheel without a WHEEL file, and one whose
             dependency has a malformed environment marker

Wheels are written with fixed timestamps, so rebuilding gives the same bytes."""

import os
import zipfile

STAMP = (2024, 1, 1, 0, 0, 0)


def wheel(folder, filename, files, wheel_file=True, purelib="true", links=()):
    name, version = filename.split("-")[:2]
    info = f"{name}-{version}.dist-info"
    entries = dict(files)
    meta = entries.pop("METADATA", "")
    entries[f"{info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{meta}\n"
    )
    if wheel_file:
        entries[f"{info}/WHEEL"] = (
            "Wheel-Version: 1.0\nGenerator: weft-fixtures\n"
            f"Root-Is-Purelib: {purelib}\nTag: py3-none-any\n"
        )
    entries[f"{info}/RECORD"] = ""
    os.makedirs(folder, exist_ok=True)
    with zipfile.ZipFile(os.path.join(folder, filename), "w", zipfile.ZIP_DEFLATED) as z:
        for path, text in entries.items():
            data = text.encode() if isinstance(text, str) else text
            z.writestr(zipfile.ZipInfo(path, STAMP), data, zipfile.ZIP_DEFLATED)
        for path, target in links:
            zi = zipfile.ZipInfo(path, STAMP)
            zi.create_system = 3  # unix
            zi.external_attr = (0o120777 << 16)  # a symbolic link
            z.writestr(zi, target)


wheel("wheelhouse", "tinypkg-1.0.0-py3-none-any.whl", {
    "tinypkg/__init__.py": 'VERSION = "1.0.0"\n\n\ndef shout(text):\n    return text.upper() + "!"\n',
})
wheel("wheelhouse", "tinypkg-0.9.0-py3-none-any.whl", {
    "tinypkg/__init__.py": 'VERSION = "0.9.0"\n\n\ndef shout(text):\n    return text\n',
})
wheel("wheelhouse", "tinydep-2.1-py3-none-any.whl", {
    "tinydep.py": "import tinypkg\n\n\ndef twice(text):\n    return tinypkg.shout(text) * 2\n",
    "METADATA": "Requires-Dist: tinypkg>=1.0\nRequires-Dist: pytest; extra == 'test'\n",
})

# dependencies under environment markers: one holds in the sandbox (CPython 3.14 on WASI), one
# does not, and `extra` never does
wheel("wheelhouse", "markerdep-1.0-py3-none-any.whl", {
    "markerdep.py": "import tinypkg\n",
    "METADATA": (
        'Requires-Dist: tinypkg>=1.0 ; python_version >= "3.8"\n'
        'Requires-Dist: colorama ; sys_platform == "win32"\n'
        "Requires-Dist: pytest ; extra == 'test'\n"
    ),
})

wheel("hostile", "nativepkg-1.0-py3-none-any.whl", {
    "nativepkg/__init__.py": "from ._speedups import *\n",
    "nativepkg/_speedups.cpython-312-x86_64-linux-gnu.so": b"\x7fELF not really",
})
wheel("hostile", "platpkg-1.0-cp312-cp312-manylinux_2_17_x86_64.whl", {
    "platpkg/__init__.py": "",
})
wheel("hostile", "slippkg-1.0-py3-none-any.whl", {
    "slippkg/__init__.py": "",
    "../../escaped.py": "print('out of the folder')\n",
})
wheel("hostile", "linkpkg-1.0-py3-none-any.whl", {
    "linkpkg/__init__.py": "",
}, links=[("linkpkg/passwd", "/etc/passwd")])
wheel("hostile", "bombpkg-1.0-py3-none-any.whl", {
    "bombpkg/__init__.py": "",
    "bombpkg/zeros.txt": b"\0" * (48 << 20),
})
wheel("hostile", "nowheel-1.0-py3-none-any.whl", {"nowheel/__init__.py": ""}, wheel_file=False)
wheel("hostile", "badmarker-1.0-py3-none-any.whl", {
    "badmarker.py": "",
    "METADATA": 'Requires-Dist: tinypkg ; python_version ~ "3"\n',
})
