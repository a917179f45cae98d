"""What a fresh clone holds and documents: data/ with its README, generated content ignored,
and a README that names every command-line option and environment variable the workbook reads."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from conftest import ROOT

from helpers.cli import build_parser

README = (ROOT / "README.md").read_text()


def _git(*args: str) -> subprocess.CompletedProcess:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)


def test_data_readme_is_committed_and_what_is_made_there_is_ignored():
    assert (ROOT / "data" / "README.md").is_file()
    assert _git("check-ignore", "-q", "data/README.md").returncode == 1  # not ignored
    for made in ("data/models/det_500m.onnx", "data/samples/astronaut.png", "data/engines/x.plan"):
        assert _git("check-ignore", "-q", made).returncode == 0, f"{made} would be committed"


@pytest.mark.parametrize("variable", ["SCRFD_MODEL_DIR", "SCRFD_IMAGE_DIR", "GPU", "CUDA_MAJOR"])
def test_every_environment_variable_is_documented(variable):
    assert re.search(rf"`{variable}[`=]", README), f"README does not explain {variable}"


def test_the_readme_command_line_section_names_every_command_and_option():
    section = README.split("## Command line", 1)[1].split("\n## ", 1)[0]
    sub = next(a for a in build_parser()._actions if isinstance(a.choices, dict))
    for name, command in sub.choices.items():
        assert f"python -m helpers {name}" in section, name
        for action in command._actions:
            for flag in action.option_strings:
                if flag not in ("-h", "--help"):
                    assert flag in section, f"{name} {flag} is not in the README's command line section"
