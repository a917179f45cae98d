"""The CLI as a shell tool: help that shows defaults, its own name, and quiet closed pipes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import ROOT, named_model, shared_image

from helpers.cli import build_parser

ENV = {**os.environ, "PYTHONUNBUFFERED": "0"}


def _help(*command: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "helpers", *command, "--help"], cwd=ROOT, capture_output=True, text=True
    ).stdout


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        ("detect", ["(default: 0.5)", "(default: 0.4)", "(default: auto)", "(default: v3)", "(default: 640"]),
        ("detect", ["--input-size 640 --input-size 160"]),
        ("compare", ["(default: 0.5)", "(default: 0.4)", "(default: precision=fp16)"]),
        ("bench", ["(default: 100)", "timed iterations"]),
        ("build", ["(default: 3)", "(default: data/engines)"]),
        ("models", ["det_500m (buffalo_sc.zip)", "det_2.5g", "det_10g", "(default: det_500m)", "link"]),
    ],
)
def test_help_shows_defaults_and_meanings(command, shown):
    text = " ".join(_help(command).split())  # argparse wraps lines
    assert all(s in text for s in shown), text


def test_every_option_of_every_command_says_what_it_does():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.choices and isinstance(a.choices, dict))
    for name, command in sub.choices.items():
        for action in command._actions:
            assert action.help, f"{name} {action.option_strings or action.dest} has no help"


def test_the_console_script_names_itself(tmp_path):
    script = tmp_path / "scrfd-workbook"  # what pip writes for [project.scripts]
    script.write_text("import sys\nfrom helpers.cli import main\nsys.exit(main())\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout's helpers, as an installed script finds it
    out = subprocess.run([sys.executable, script, "--help"], capture_output=True, text=True, env=env)
    assert out.stdout.startswith("usage: scrfd-workbook ")
    assert _help().startswith("usage: python -m helpers ")


def _into_closed_pipe(*args: str) -> subprocess.CompletedProcess:
    """Run the CLI with stdout a pipe whose reader has already gone, as `| head` leaves it."""
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "helpers", *map(str, args)],
            cwd=ROOT,
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
            timeout=300,
        )
    finally:
        os.close(write)
    return proc


@pytest.mark.parametrize(
    "args",
    [
        ["inspect", "MODEL"],
        ["detect", "IMAGE", "--json", "-", "--backend", "onnxruntime"],
        ["doctor", "--explain", "invalid resource handle"],
    ],
)
def test_a_closed_pipe_ends_quietly(args):
    model, image = named_model("scrfd_500m"), shared_image("t1.jpg")
    args = [model if a == "MODEL" else image if a == "IMAGE" else a for a in args]
    result = _into_closed_pipe(*args)
    assert result.returncode in (0, 141), result.stderr
    assert "Broken pipe" not in result.stderr and "Traceback" not in result.stderr
    assert "Exception ignored" not in result.stderr


def test_head_reads_the_first_line_and_the_cli_ends_quietly():
    model = named_model("scrfd_500m")
    shell = f"set -o pipefail; {sys.executable} -m helpers inspect {model} | head -1; echo status=$?"
    out = subprocess.run(["bash", "-c", shell], cwd=ROOT, capture_output=True, text=True, timeout=300)
    first, status = out.stdout.splitlines()
    assert first.startswith("model") and status in ("status=0", "status=141")
    assert out.stderr == ""
