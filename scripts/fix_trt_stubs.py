"""Copy tensorrt-stubs into a folder mypy can read (the published .pyi files do not parse).

tensorrt-stubs 10.13.0.35.1 ships .pyi files without py.typed (so mypy ignores them) and with
stubgen slips: a parameter named `in` and a required parameter after defaulted ones. This
writes fixed copies of `tensorrt/` and `tensorrt_bindings/` to OUT (default .typings).
"""

import ast
import re
import sys
import sysconfig
from pathlib import Path

site = Path(sysconfig.get_paths()["purelib"])
out = Path(sys.argv[1] if len(sys.argv) > 1 else ".typings")
for package in ("tensorrt", "tensorrt_bindings"):
    for stub in (site / package).glob("*.pyi"):
        text = stub.read_text()
        text = re.sub(r"([(,] ?)in: ", r"\1in_: ", text)  # `in` is a keyword
        text = text.replace(", channel_axis: int)", ", channel_axis: int = ...)")
        text = text.replace("import tensorrt_libs as tensorrt_libs\n", "")
        ast.parse(text)  # fail loudly if another slip appears in a later stubs release
        target = out / package / stub.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
print(f"patched tensorrt stubs written to {out}")
