"""`detect --batch N`, `batchify` and `inspect` on the command line, ONNX Runtime on the CPU.

The contract: `detect --batch N` prints and writes, in input order, exactly the JSON of one image
per call (timings aside, which are measurements); a last partial batch runs at its real size,
and an unreadable image in a batch fails alone.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from conftest import MODEL_NAMES, named_model, shared_image
from test_batch import _broken
from test_cli import assert_one_line_error, cli

from helpers.batch.batchify import load
from helpers.samples import sample_path


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> list[str]:
    return held_out_images(tmp_path_factory.mktemp("held_out"))


def held_out_images(folder: Path) -> list[str]:
    """Nine images of mixed sizes (one grayscale, one unreadable): batches of 4, 4 and a partial 1."""
    photo = cv2.imread(str(shared_image("t1.jpg")))
    made = {
        "tall.png": cv2.resize(photo, (333, 701)),
        "wide.jpg": cv2.resize(cv2.imread(str(sample_path("crowd48.png"))), (1500, 610)),
        "gray.png": cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY),
        "tiny.png": cv2.resize(photo, (97, 61)),
    }
    for name, image in made.items():
        cv2.imwrite(str(folder / name), image)
    (folder / "broken.jpg").write_bytes(b"not an image")
    return [
        str(shared_image("Tom_Hanks_54745.png")),
        str(folder / "tall.png"),
        str(sample_path("crowd48.png")),
        str(folder / "broken.jpg"),
        str(folder / "wide.jpg"),
        str(shared_image("mask_white.jpg")),
        str(folder / "gray.png"),
        str(shared_image("t1.jpg")),
        str(folder / "tiny.png"),
    ]


def detections(stdout: str) -> str:
    entries = json.loads(stdout)
    for entry in entries:
        entry.pop("timings_ms")
    return json.dumps(entries, indent=2)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_detect_batch_json_equals_one_image_per_call(name, images):
    model = named_model(name)
    args = ("detect", *images, "--model", model, "--backend", "onnxruntime", "--json", "-")
    one = cli(*args)
    batched = cli(*args, "--batch", "4")
    assert one.returncode == batched.returncode == 1  # the broken image, named once each
    assert batched.stderr.count("broken.jpg") == one.stderr.count("broken.jpg") == 2
    assert detections(batched.stdout) == detections(one.stdout)
    found = json.loads(batched.stdout)
    assert [e["image"] for e in found] == [i for i in images if "broken" not in i]
    assert sum(len(e["detections"]) for e in found) > 50


def test_detect_batch_at_two_sizes_equals_one_image_per_call(images):
    model = named_model("scrfd_2.5g")
    sizes = ("--input-size", "640", "480", "--input-size", "160")
    args = ("detect", *images[:3], "--model", model, "--backend", "onnxruntime", *sizes, "--json", "-")
    assert detections(cli(*args, "--batch", "2").stdout) == detections(cli(*args).stdout)


def test_detect_batch_refuses_bad_counts(images):
    assert_one_line_error(cli("detect", images[0], "--batch", "0"), "--batch 0 must be at least 1")


def test_detect_batch_with_gpu_stages_on_onnxruntime_says_they_need_tensorrt(images):
    result = cli("detect", images[0], "--batch", "2", "--backend", "onnxruntime", "--preprocess", "gpu")
    assert_one_line_error(result, "--preprocess gpu needs the TensorRT backend")


def test_batchify_cli_writes_the_checked_rewrite(tmp_path):
    out = tmp_path / "b.onnx"
    result = cli("batchify", named_model("scrfd_500m"), "--out", out)
    assert result.returncode == 0, result.stderr
    assert "perm [2, 3, 0, 1] -> [0, 2, 3, 1]" in result.stdout and out.is_file()
    again = cli("batchify", out)
    assert again.returncode == 0 and "batchable as it stands" in again.stdout


def test_batchify_cli_refuses_a_head_it_cannot_rewrite_in_one_line(tmp_path):
    path = tmp_path / "odd.onnx"
    onnx.save(_broken(load(named_model("scrfd_500m")), [3, 2, 0, 1]), str(path))
    assert_one_line_error(cli("batchify", path), "cannot be rewritten to a dynamic batch")


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_inspect_says_whether_a_model_is_batchable(name, tmp_path):
    model = named_model(name)
    report = json.loads(cli("inspect", model, "--json").stdout)["batch"]
    assert report["batchable"] is False and report["rewrite"] and report["cannot_rewrite"] is None
    assert any("input batch 1 -> dynamic" in change for change in report["rewrite"])
    text = cli("inspect", model).stdout
    assert "not batchable as it stands; `batchify` makes" in text
    out = tmp_path / "b.onnx"
    cli("batchify", model, "--out", out)
    assert json.loads(cli("inspect", out, "--json").stdout)["batch"]["batchable"] is True


def test_batch_outputs_hold_each_image_apart_in_the_rewritten_model(tmp_path):
    """A raw check of the file `detect --batch` runs: batch 2 of two different images."""
    out = tmp_path / "b.onnx"
    cli("batchify", named_model("scrfd_500m_bnkps"), "--out", out)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(5).uniform(-1, 1, (2, 3, 640, 640)).astype(np.float32)
    both = session.run(None, {"input.1": x})
    for i in range(2):
        for got, want in zip(both, session.run(None, {"input.1": x[i : i + 1]}), strict=True):
            np.testing.assert_array_equal(got[i : i + 1], want)
