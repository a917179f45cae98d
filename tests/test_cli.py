"""The CLI contract other tools read, and one-line errors for every bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import ROOT, named_model, shared_image
from synthetic import scrfd_like

from helpers.samples import sample_path
from helpers.trt.backend import tensorrt_available
from helpers.trt.runtime import EMULATOR

TENSORRT_USABLE = tensorrt_available()[0]

DETECTION_KEYS = {
    "image",
    "width",
    "height",
    "model",
    "backend",
    "input_size",
    "input_sizes",
    "detections",
    "timings_ms",
}


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "helpers", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


def assert_one_line_error(result: subprocess.CompletedProcess, text: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors and any(text in line for line in errors), result.stderr


@pytest.fixture(scope="module")
def models_env():
    from conftest import model_dir

    return {"SCRFD_MODEL_DIR": str(model_dir())}


def test_detect_json_contract(tmp_path, models_env):
    image = shared_image("t1.jpg")
    out = tmp_path / "r.json"
    result = cli(
        "detect",
        image,
        "--json",
        out,
        "--backend",
        "onnxruntime",
        "--annotate",
        tmp_path / "ann",
        env=models_env,
    )
    assert result.returncode == 0, result.stderr
    [entry] = json.loads(out.read_text())
    assert set(entry) == DETECTION_KEYS
    assert entry["image"] == str(image) and (entry["width"], entry["height"]) == (1280, 886)
    assert entry["backend"] == "onnxruntime" and entry["input_size"] == [640, 640]
    assert entry["input_sizes"] == [[640, 640]]
    assert set(entry["timings_ms"]) == {"preprocess", "inference", "postprocess"}
    assert len(entry["detections"]) == 6
    for det in entry["detections"]:
        assert set(det) == {"box", "score", "landmarks"}
        x1, y1, x2, y2 = det["box"]
        assert 0 <= x1 < x2 <= 1280 and 0 <= y1 < y2 <= 886 and 0.5 <= det["score"] <= 1
        assert len(det["landmarks"]) == 5 and all(len(p) == 2 for p in det["landmarks"])
        assert x1 <= det["landmarks"][2][0] <= x2  # the nose is inside its box
    drawn = cv2.imread(str(tmp_path / "ann" / "t1.jpg"))
    assert drawn.shape == (886, 1280, 3) and not np.array_equal(drawn, cv2.imread(str(image)))


def test_batch_keeps_the_good_images_and_names_the_bad(tmp_path, models_env):
    good = sample_path("astronaut.png")
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"nope")
    out = tmp_path / "r.json"
    result = cli(
        "detect",
        good,
        bad,
        tmp_path / "missing.png",
        "--json",
        out,
        "--backend",
        "onnxruntime",
        env=models_env,
    )
    assert result.returncode == 1
    assert_one_line_error(result, "broken.jpg could not be decoded")
    assert_one_line_error(result, "missing.png does not exist")
    entries = json.loads(out.read_text())
    assert [e["image"] for e in entries] == [str(good)] and len(entries[0]["detections"]) == 1


def test_input_size_width_height_and_static_model_note(models_env):
    result = cli(
        "detect",
        sample_path("astronaut.png"),
        "--input-size",
        "320",
        "256",
        "--json",
        "-",
        "--backend",
        "onnxruntime",
        "--model",
        named_model("scrfd_2.5g"),
        env=models_env,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[0]["input_size"] == [320, 256]
    result = cli(
        "detect",
        sample_path("astronaut.png"),
        "--input-size",
        "320",
        "--json",
        "-",
        "--backend",
        "onnxruntime",
        "--model",
        named_model("scrfd_500m_bnkps"),
        env=models_env,
    )
    assert json.loads(result.stdout)[0]["input_size"] == [640, 640]
    assert result.stderr.count("static 640x640 input") == 1


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["--input-size", "100"], "not a positive multiple of 32"),
        (["--input-size", "640", "500"], "640x500 is not a positive multiple of 32"),
        (["--score-threshold", "1.5"], "outside [0, 1]"),
        (["--nms-threshold", "-0.1"], "outside [0, 1]"),
        (["--model", "/nonexistent/model.onnx"], "does not exist"),
        pytest.param(
            ["--backend", "tensorrt"],
            "--backend tensorrt is not usable here",
            marks=pytest.mark.skipif(TENSORRT_USABLE, reason="TensorRT is usable here"),
        ),
    ],
)
def test_bad_options_are_one_line_errors(args, text, models_env):
    result = cli("detect", sample_path("astronaut.png"), *args, env=models_env)
    assert result.returncode == 2
    assert_one_line_error(result, text)


def test_corrupt_and_non_scrfd_models_are_refused(tmp_path):
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07garbage")
    assert_one_line_error(
        cli("detect", sample_path("astronaut.png"), "--model", corrupt, "--backend", "onnxruntime"),
        "cannot load model",
    )
    assert_one_line_error(cli("inspect", corrupt), "cannot read")
    other = scrfd_like(tmp_path / "other.onnx", landmarks=False, extra_outputs=1)
    assert_one_line_error(cli("detect", sample_path("astronaut.png"), "--model", other), "not an SCRFD model")
    assert_one_line_error(cli("inspect", other), "not an SCRFD model")


def test_no_models_says_how_to_fetch(tmp_path):
    result = cli("detect", sample_path("astronaut.png"), env={"SCRFD_MODEL_DIR": str(tmp_path)})
    assert_one_line_error(result, "models fetch")


def test_annotate_into_a_file_is_refused(tmp_path, models_env):
    target = tmp_path / "file.txt"
    target.write_text("x")
    assert_one_line_error(
        cli("detect", sample_path("astronaut.png"), "--annotate", target, env=models_env), "is a file"
    )


def test_inspect_json_contract(model_path):
    result = cli("inspect", model_path, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert {"inputs", "outputs", "opset", "ops", "layout"} <= set(report)
    assert report["opset"] == 11 and report["ops"]["Conv"] > 0
    assert all(set(t) == {"name", "shape", "dtype"} for t in report["inputs"] + report["outputs"])
    layout = report["layout"]
    assert layout["strides"] == [8, 16, 32] and layout["anchors_per_location"] == 2 and layout["landmarks"]
    assert layout["batched"] == model_path.stem.endswith("bnkps")
    assert layout["dynamic_input"] == (not model_path.stem.endswith("bnkps"))
    assert set(layout["outputs"]) == {"score", "bbox", "kps"}
    assert all(set(v) == {"8", "16", "32"} for v in layout["outputs"].values())
    dims = report["inputs"][0]["shape"]
    assert all(isinstance(d, int | str) for d in dims)


def test_inspect_flags_declared_shapes_that_lie(models_env):
    result = cli("inspect", named_model("scrfd_500m"))
    assert result.returncode == 0 and "declared shape is wrong" in result.stdout


def test_models_list(models_env):
    result = cli("models", "list", env=models_env)
    assert result.returncode == 0 and "(default)" in result.stdout


def test_unknown_fetch_name_is_refused():
    assert_one_line_error(cli("models", "fetch", "det_999"), "unknown model 'det_999'")


def test_bench_times_the_pipeline_and_names_what_it_skipped(tmp_path, models_env):
    out = tmp_path / "bench.json"
    result = cli("bench", "--repeat", "5", "--input-size", "320", "--json", out, env=models_env)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    model = report["run"]["model"]
    assert report["run"] == {"model": model, "image": report["run"]["image"], "input": "320x320", "repeat": 5}
    assert result.stdout.splitlines()[0].startswith(f"model {model}, image ")
    assert "input 320x320, repeat 5" in result.stdout.splitlines()[0]
    stages = report["pipeline"]["onnxruntime"]
    assert set(stages) == {"preprocess", "inference", "postprocess", "total"}
    assert all(s["n"] == 5 and 0 < s["median"] <= s["p99"] for s in stages.values())
    assert report["ratios"]["onnxruntime_pipeline_vs_inference"] >= 1.0
    if set(report["pipeline"]) == {"onnxruntime"}:
        assert "TensorRT" in report["skipped"]["tensorrt"] and "skipped tensorrt" in result.stdout
    else:  # TensorRT ran: under trtemu every TensorRT row says it is the emulator
        emulated = json.loads(cli("doctor", "--json").stdout)["tensorrt"].get("emulator")
        assert not emulated or all("not TensorRT" in k for k in report["pipeline"] if k != "onnxruntime")


def test_doctor_runs_anywhere_and_explains_errors():
    result = cli("doctor")
    assert result.returncode == 0 and "tensorrt" in result.stdout
    result = cli("doctor", "--json")
    assert json.loads(result.stdout)["gpu"]["available"] in (True, False)
    result = cli("doctor", "--explain", "Cuda Runtime (invalid resource handle)")
    assert result.returncode == 0 and "notebooks/03_cuda_context_setup.ipynb" in result.stdout
    assert cli("doctor", "--explain", "all good here").returncode == 1


def test_build_without_tensorrt_is_a_one_line_error(models_env):
    from helpers.trt.runtime import tensorrt_status

    if tensorrt_status()[0]:
        pytest.skip("TensorRT is installed here: the build really runs (tests/test_trt_engine.py)")
    assert_one_line_error(cli("build", env=models_env), "TensorRT is not installed")
    assert_one_line_error(cli("build", "--opt-level", "9", env=models_env), "--opt-level 9")


def test_float16_io_export_detects_the_same_faces(tmp_path, models_env):
    """An fp16 conversion without keep_io_types takes and returns float16 tensors."""
    import warnings

    import onnx
    from onnxconverter_common import float16

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = float16.convert_float_to_float16(onnx.load(named_model("scrfd_500m")), keep_io_types=False)
    path = tmp_path / "fp16io.onnx"
    onnx.save(model, str(path))
    result = cli("detect", shared_image("t1.jpg"), "--model", path, "--backend", "onnxruntime", "--json", "-")
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)[0]["detections"]) == 6


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["detect", "IMG", "--json", "/proc/x.json"], "cannot write /proc/x.json"),
        (["detect", "IMG", "--json", "/tmp"], "is a directory"),
        (["detect", "IMG", "--annotate", "/proc/ann"], "cannot write /proc/ann"),
        (["compare", "IMG", "--json", "/proc/c.json"], "cannot write /proc/c.json"),
        (["bench", "--json", "/proc/b.json"], "cannot write /proc/b.json"),
        (["bench", "--repeat", "0"], "--repeat 0"),
        (["compare", "IMG", "--a", "backend=auto,precision=fp16"], "backend 'auto' is not one of"),
        (["build", "--workspace", "0"], "--workspace 0 MiB"),
    ],
)
def test_unwritable_outputs_and_bad_counts_fail_before_the_work(args, text, models_env):
    image = str(sample_path("astronaut.png"))
    assert_one_line_error(cli(*[image if a == "IMG" else a for a in args], env=models_env), text)


def test_a_face_that_fills_the_frame_gets_a_hint_that_finds_it(models_env):
    """A 112x112 face crop: 0 faces at 640, and the suggested second size finds the face."""
    crop = shared_image("Tom_Hanks_54745.png")
    model = named_model("scrfd_2.5g")
    result = cli("detect", crop, "--model", model, "--backend", "onnxruntime")
    assert result.returncode == 0 and ": 0 faces" in result.stdout
    [hint] = [line for line in result.stderr.splitlines() if line.startswith("hint:")]
    suggested = hint.split("(", 1)[1].split(")", 1)[0].split()
    assert suggested[0] == "--input-size" and suggested.count("--input-size") == 2
    found = cli("detect", crop, "--model", model, "--backend", "onnxruntime", *suggested, "--json", "-")
    assert found.returncode == 0, found.stderr
    [entry] = json.loads(found.stdout)
    assert len(entry["detections"]) == 1 and "hint:" not in found.stderr
    assert entry["input_size"] == [640, 640] and entry["input_sizes"] == [[640, 640], [160, 160]]
    assert ": 1 face " in found.stderr  # one face, not "1 faces"


def test_several_input_sizes_merge_into_one_set_of_faces(models_env):
    image = shared_image("t1.jpg")
    model = named_model("scrfd_500m")
    args = ("detect", image, "--model", model, "--backend", "onnxruntime", "--json", "-")
    one = json.loads(cli(*args).stdout)[0]["detections"]
    both = json.loads(cli(*args, "--input-size", "640", "--input-size", "320", "256").stdout)[0]
    assert both["input_sizes"] == [[640, 640], [320, 256]]
    assert len(both["detections"]) == len(one) == 6  # the same faces, each once after the merge


def test_several_sizes_on_a_static_model_are_a_one_line_error(models_env):
    result = cli(
        "detect",
        sample_path("astronaut.png"),
        "--model",
        named_model("scrfd_500m_bnkps"),
        "--input-size",
        "640",
        "--input-size",
        "160",
    )
    assert result.returncode == 2
    assert_one_line_error(result, "static 640x640 input, so it cannot run at several sizes")


def test_compare_errors_speak_of_the_keys_the_user_typed(models_env):
    from helpers.trt.backend import tensorrt_available

    image = sample_path("astronaut.png")
    result = cli("compare", image, "--a", "backend=auto", env=models_env)
    assert_one_line_error(result, "--a backend=auto: backend 'auto' is not one of")
    assert "--backend" not in result.stderr
    if tensorrt_available()[0]:
        return
    result = cli("compare", image, "--b", "backend=tensorrt", env=models_env)
    assert_one_line_error(result, "--b backend=tensorrt: backend=tensorrt is not usable here")
    assert "--backend" not in result.stderr and "use backend=onnxruntime" in result.stderr


def test_annotate_errors_name_the_users_folder(models_env):
    result = cli("detect", sample_path("astronaut.png"), "--annotate", "/proc/annotated", env=models_env)
    assert_one_line_error(result, "cannot write /proc/annotated:")
    assert "probe" not in result.stderr


def test_no_model_anywhere_is_one_line_naming_the_variable_and_the_fetch(tmp_path):
    result = cli("detect", sample_path("astronaut.png"), env={"SCRFD_MODEL_DIR": str(tmp_path / "none")})
    assert_one_line_error(result, f"SCRFD_MODEL_DIR={tmp_path / 'none'} is not a folder")
    assert_one_line_error(result, "python -m helpers models fetch")


@pytest.mark.tensorrt
def test_multi_size_on_tensorrt_finds_the_faces_onnxruntime_finds(models_env):
    """One engine whose profile covers 640 and 160 runs both sizes (needs TensorRT and a GPU)."""
    from helpers.trt.backend import tensorrt_available

    ok, why = tensorrt_available()
    if not ok:
        pytest.skip(f"TensorRT not installed or not usable here: {why}")
    crop, model = shared_image("Tom_Hanks_54745.png"), named_model("scrfd_2.5g")
    runs = {}
    for backend in ("onnxruntime", "tensorrt"):
        sizes = ("--input-size", "640", "--input-size", "160")
        result = cli("detect", crop, "--model", model, "--backend", backend, *sizes, "--json", "-")
        assert result.returncode == 0, result.stderr
        runs[backend] = json.loads(result.stdout)[0]
    assert runs["tensorrt"]["backend"] in ("tensorrt", EMULATOR)  # trtemu names itself
    [want], [got] = runs["onnxruntime"]["detections"], runs["tensorrt"]["detections"]
    np.testing.assert_allclose(got["box"], want["box"], atol=2.0)
