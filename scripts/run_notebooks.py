"""Execute notebooks headless and keep the executed copies (with outputs) as reports.

Used on the H100 (device tool, from the repository root, carry=[".whl"]):

    python3 scripts/run_notebooks.py notebooks/03_cuda_context_setup.ipynb \
      notebooks/05_execute_v2_vs_v3.ipynb --out $OUT --tag h100

which writes $OUT/03_cuda_context_setup.h100.ipynb etc. (then copied to reports/).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from helpers.notebooks import error_outputs, execute  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="folder for the executed copies")
    parser.add_argument("--tag", default="executed", help="inserted before .ipynb in the copies' names")
    parser.add_argument("--timeout", type=int, default=300, help="seconds per cell")
    args = parser.parse_args()
    import nbformat

    args.out.mkdir(parents=True, exist_ok=True)
    failed = 0
    for path in args.notebooks:
        start = time.perf_counter()
        nb = execute(path.resolve(), args.timeout, allow_errors=True)  # keep every output, errors too
        target = args.out / f"{path.stem}.{args.tag}.ipynb"
        nbformat.write(nb, target)
        errors = error_outputs(nb)
        failed += bool(errors)
        print(
            f"ran {path.name} in {time.perf_counter() - start:.1f} s -> {target}; errors: {errors or 'none'}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
