"""Every notebook, by name: committed without outputs, ends with what to remember, runs headless.

Execution uses nbclient with the python3 kernel from notebooks/, inheriting SCRFD_MODEL_DIR.
Cells needing a GPU or TensorRT explain themselves on a CPU-only machine, so every notebook must
run to the end here. Without any model a notebook that needs one stops at its first cell that
does, with one line (`UserError: ...` naming SCRFD_MODEL_DIR and `models fetch`), and its test
skips with that line.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.models import model_dir, onnx_in
from helpers.notebooks import (
    NOTEBOOKS,
    cwd_dependencies,
    ending_problems,
    execute,
    notebook_files,
    output_problems,
)

pytestmark = pytest.mark.notebooks

FILES = notebook_files()
CELL_TIMEOUT = 300


def _read(path: Path):
    import nbformat

    return nbformat.read(path, as_version=4)


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_committed_without_outputs(path: Path) -> None:
    assert output_problems(_read(path)) == []


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_ends_with_what_to_remember_and_next(path: Path) -> None:
    assert ending_problems(_read(path), int(path.name[:2])) == []


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_code_does_not_depend_on_the_working_folder(path: Path) -> None:
    assert cwd_dependencies(_read(path)) == []


def test_decode_notebook_runs_from_another_folder(tmp_path: Path) -> None:
    """Its reference check and benchmark live in benchmarks/; a kernel started elsewhere finds them."""
    execute(NOTEBOOKS / "06_decode_and_nms.ipynb", timeout=CELL_TIMEOUT, cwd=tmp_path)


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_executes_headless(path: Path) -> None:
    from nbclient.exceptions import CellExecutionError

    try:
        execute(path, timeout=CELL_TIMEOUT)  # raises CellExecutionError naming the failing cell
    except CellExecutionError as exc:
        if exc.ename == "UserError" and not onnx_in(model_dir()):
            pytest.skip(f"{path.name} needs a model: {exc.evalue}")
        raise


def test_without_models_a_notebook_says_so_in_one_line(tmp_path, monkeypatch) -> None:
    from nbclient.exceptions import CellExecutionError

    monkeypatch.setenv("SCRFD_MODEL_DIR", str(tmp_path))  # an empty folder
    monkeypatch.setenv("PYTHONPATH", str(NOTEBOOKS.parent))  # this checkout's helpers in the kernel
    with pytest.raises(CellExecutionError) as failed:
        execute(NOTEBOOKS / "01_onnx_inspection.ipynb", timeout=CELL_TIMEOUT)
    assert failed.value.ename == "UserError"
    assert f"no .onnx models in SCRFD_MODEL_DIR={tmp_path}" in failed.value.evalue
    assert "python -m helpers models fetch" in failed.value.evalue
    assert "Traceback" not in str(failed.value) and "----> " not in str(failed.value)


PHOTO_NOTEBOOKS = ("06_decode_and_nms.ipynb", "06b_gpu_pre_post.ipynb", "06d_batching.ipynb")


@pytest.mark.parametrize("name", PHOTO_NOTEBOOKS)
def test_without_the_shared_photos_a_notebook_runs_and_says_which_images_it_used(
    name, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("SCRFD_IMAGE_DIR", str(tmp_path))  # an empty folder
    monkeypatch.setenv("PYTHONPATH", str(NOTEBOOKS.parent))  # this checkout's helpers in the kernel
    nb = execute(NOTEBOOKS / name, timeout=CELL_TIMEOUT)
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "images: no photos (t1.jpg" in printed and "frames made from crowd48.png" in printed
