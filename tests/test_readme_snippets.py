"""Every README block that starts with `# snippet: needs ...` runs, and finds the sample's face."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"^```python\n(# snippet: needs ([^\n]*)\n.*?)^```$", re.M | re.S)


def missing(need: str) -> str | None:
    """Why this machine cannot run a snippet that needs `need`, or None when it can."""
    if need == "onnxruntime":
        import onnxruntime  # noqa: F401  (a dependency of every CPU install)

        return None
    if need == "tensorrt":
        from helpers.trt.backend import tensorrt_available

        ok, why = tensorrt_available()
        return None if ok else f"no TensorRT here: {why}"
    if need == "gpu":
        from helpers.errors import UserError
        from helpers.gpu.stages import require_cupy

        try:
            require_cupy()
        except UserError as exc:
            return f"no GPU stages here: {exc}"
        return None
    raise AssertionError(f"README snippet needs {need!r}: the test knows onnxruntime, tensorrt, gpu")


def snippets() -> list:
    found = [(m.group(1), m.group(2).split()) for m in BLOCK.finditer(README.read_text())]
    return [pytest.param(code, needs, id="+".join(needs)) for code, needs in found]


def test_the_readme_has_the_three_snippets():
    assert [p.id for p in snippets()][:3] == ["onnxruntime", "tensorrt", "tensorrt+gpu"]


@pytest.mark.parametrize(("code", "needs"), snippets())
def test_readme_snippet_runs_and_finds_the_face(code, needs, capsys):
    reasons = [why for why in map(missing, needs) if why]
    if reasons:
        pytest.skip("; ".join(reasons))
    scope: dict = {}
    exec(compile(code, str(README), "exec"), scope)
    assert len(scope["faces"]) == 1  # the astronaut sample has one face
    assert "box" in capsys.readouterr().out
