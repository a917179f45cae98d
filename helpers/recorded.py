"""Outputs recorded on a GPU machine, shown in place of a cell that cannot run here.

`scripts/tensorrt_run.py` re-executes the TensorRT notebooks there into
`reports/trtemu/<notebook>.trtemu.ipynb`. A cell is found by its id, which survives
re-execution and edits around it (a position would not), and every output shown starts with
a label naming the machine and, for trtemu, saying it is not TensorRT.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

RECORDINGS = Path(__file__).resolve().parent.parent / "reports" / "trtemu"
_MACHINE = re.compile(r" on (NVIDIA [^\n(]+?) \(sm")
# The recording machine's checkout folder in front of a path of the repository's own folders.
_CHECKOUT = re.compile(r"(?<![\w.~])/(?:[\w.+-]+/)+?(?=(?:data|reports|notebooks|examples)/)")


def recording_path(notebook: str, folder: Path = RECORDINGS) -> Path:
    return folder / f"{notebook}.trtemu.ipynb"


def label(machine: str) -> str:
    return f"recorded on {machine} through trtemu (TensorRT API emulator), not TensorRT"


def _texts(output: dict) -> str:
    """The output's text, its paths relative to the checkout (the recording machine's is not yours)."""
    data = output.get("data", {})
    text = output.get("text", data.get("text/markdown", data.get("text/plain", "")))
    return _CHECKOUT.sub("", "".join(text) if isinstance(text, list) else text)


def recorded_outputs(notebook: str, cell_id: str, folder: Path = RECORDINGS) -> tuple[str, list[dict]] | None:
    """The recording's machine and the outputs of its cell `cell_id`, or None if not recorded."""
    path = recording_path(notebook, folder)
    if not path.is_file():
        return None
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    outputs: list[dict] = next((c.get("outputs", []) for c in cells if c.get("id") == cell_id), [])
    if not outputs:
        return None
    every_text = "\n".join(_texts(o) for c in cells for o in c.get("outputs", []))
    found = _MACHINE.search(every_text)
    return (found.group(1).strip() if found else "a GPU machine"), outputs


def show_recorded(notebook: str, cell_id: str, folder: Path = RECORDINGS) -> None:
    """Print (and display) what cell `cell_id` of `notebook` showed on the GPU machine, labelled."""
    from IPython.display import Image, Markdown, display

    recorded = recorded_outputs(notebook, cell_id, folder)
    if recorded is None:
        print(f"Not recorded yet: {recording_path(notebook, folder).name} has no output for this cell")
        print("(scripts/tensorrt_run.py on a GPU machine records it).")
        return
    machine, outputs = recorded
    print(f"[{label(machine)}]")
    for output in outputs:
        data = output.get("data", {})
        if "image/png" in data:
            display(Image(data=data["image/png"]))
        elif "text/markdown" in data:
            display(Markdown(_texts(output)))
        elif output.get("output_type") != "error":
            print(_texts(output), end="")


def script_run(path: Path = RECORDINGS / "your_script_fixed.json") -> str:
    """The seed script and its fix as run on the GPU (scripts/your_script_fixed_run.py), as text."""
    if not path.is_file():
        return f"Not recorded yet: {path.name} is missing (scripts/your_script_fixed_run.py writes it)."
    report = json.loads(path.read_text(encoding="utf-8"))
    lines = [f"[{report['label']}]", f"{report['model']} on {report['image']}"]
    for side in ("before", "after"):
        run = report[side]
        lines += ["", f"{side}: {run['command']}  (exit status {run['returncode']})"]
        lines += [f"  {line}" for line in run["tensorrt_log"][:6]]
        for worker in run["workers"]:
            errors = "; ".join(worker["errors"]) or "none"
            lines.append(
                f"  worker {worker['worker']}: {worker['faces']} faces in its last frame "
                f"({worker['frames']} frames run), errors: {errors}"
            )
        if not run["workers"]:
            lines += ["  no worker reported; the end of its stderr:", *(f"  {x}" for x in run["stderr_tail"])]
    return "\n".join(lines)
