"""CPU tests of the CUDA layer's pure parts: status checking, statistics, explain, doctor."""

from __future__ import annotations

import enum
import subprocess
import sys
import types
from pathlib import Path

import pytest

from helpers.cuda.check import CudaError, call, check, error_name
from helpers.cuda.doctor import advice, cuda_users, doctor, format_report, tensorrt_report
from helpers.cuda.explain import EXPLANATIONS, explain
from helpers.cuda.stream import summarize
from helpers.errors import UserError


class FakeStatus(enum.IntEnum):
    """Stands in for cuda-python's status enums (int-valued, with a .name)."""

    cudaSuccess = 0
    cudaErrorInvalidResourceHandle = 400
    cudaErrorUnknown = 999


def test_check_unwraps_values_by_count() -> None:
    assert check((FakeStatus.cudaSuccess,)) is None
    assert check((FakeStatus.cudaSuccess, 7)) == 7
    assert check((FakeStatus.cudaSuccess, 7, "x")) == (7, "x")
    assert check(FakeStatus.cudaSuccess) is None


def test_check_raises_with_name_and_hint() -> None:
    with pytest.raises(CudaError) as caught:
        check((FakeStatus.cudaErrorInvalidResourceHandle, None), "cudaMemcpyAsync")
    error = caught.value
    assert isinstance(error, UserError)
    assert (error.name, error.code) == ("cudaErrorInvalidResourceHandle", 400)
    assert str(error).startswith("cudaMemcpyAsync failed: cudaErrorInvalidResourceHandle (400)")
    assert "another CUDA context" in str(error)


def test_unknown_error_has_no_hint_but_still_raises() -> None:
    with pytest.raises(CudaError, match=r"^cudaErrorUnknown \(999\)$"):
        check((FakeStatus.cudaErrorUnknown,))


def test_call_names_the_function() -> None:
    def cudaStreamSynchronize(handle: int) -> tuple[FakeStatus]:
        return (FakeStatus.cudaErrorInvalidResourceHandle,)

    with pytest.raises(CudaError, match=r"^cudaStreamSynchronize failed"):
        call(cudaStreamSynchronize, 0)
    assert error_name(FakeStatus.cudaSuccess) == "cudaSuccess"


def test_summarize_percentiles() -> None:
    stats = summarize([float(v) for v in range(1, 101)])
    assert stats["n"] == 100
    assert stats["median"] == pytest.approx(50.5)
    assert stats["mean"] == pytest.approx(50.5)
    assert stats["p90"] == pytest.approx(90.1)
    assert stats["p99"] == pytest.approx(99.01)
    assert summarize([2.0])["p99"] == 2.0


def test_summarize_refuses_no_samples() -> None:
    with pytest.raises(UserError, match="no timing samples"):
        summarize([])


@pytest.mark.parametrize(
    ("log", "topic"),
    [
        (
            "[TRT] [E] 1: [reformat.cpp::executeCutensor::388] Error Code 1: CuTensor "
            "(Internal cuTensor permutate execute failed)",
            "03_cuda_context_setup",
        ),
        (
            "pycuda._driver.LogicError: explicit_context_dependent failed: invalid device context "
            "- no currently active context?",
            "03_cuda_context_setup",
        ),
        (
            "AttributeError: 'tensorrt.tensorrt.IExecutionContext' object has no attribute "
            "'execute_async_v2'",
            "04_binding_allocation",
        ),
        (
            "Error Code 3: API Usage Error (Parameter check failed, condition: ... Address is not "
            "set for input tensor input.1.)",
            "05_execute_v2_vs_v3",
        ),
        (
            "Error Code 4: Network has dynamic or shape inputs, but no optimization profile has "
            "been defined.",
            "02_engine_building",
        ),
        ("The engine plan file is not compatible with this version of TensorRT", "02_engine_building"),
        ("my scores are ALL ZERO after the first frame", "05_execute_v2_vs_v3"),
    ],
)
def test_explain_finds_the_cause(log: str, topic: str) -> None:
    found = explain(log)
    assert found, log
    assert found[0].see == f"notebooks/{topic}.ipynb"


def test_explain_lists_matches_in_the_order_of_the_log() -> None:
    log = "CuTensor (Internal cuTensor permutate execute failed) ... Cuda Runtime (invalid resource handle)"
    patterns = [row.patterns[0] for row in explain(log)]
    assert patterns == ["Internal cuTensor permutate execute failed", "invalid resource handle"]
    reversed_log = "Cuda Runtime (invalid resource handle) ... Internal cuTensor permutate execute failed"
    assert [row.patterns[0] for row in explain(reversed_log)] == patterns[::-1]


# Lines as users pasted them in the public reports each row cites (shortened, not reworded).
PASTED = [
    (
        "[W] [TRT] onnx2trt_utils.cpp:374: Your ONNX model has been generated with INT64 weights, while "
        "TensorRT does not natively support INT64. Attempting to cast down to INT32.\n"
        "[E] 9: Skipping tactic0x03ea due to exception Internal cuTensor permutate execute failed\n"
        "[E] 9: Skipping tactic0x0000000000000000 due to exception no kernel image is available for "
        "execution on the device",
        [
            "generated with INT64 weights",
            "Internal cuTensor permutate execute failed",
            "no kernel image is available for execution on the device",
        ],
    ),
    (
        "[TRT] [E] 1: [defaultAllocator.cpp::deallocate::42] Error Code 1: Cuda Runtime (invalid argument)",
        ["Cuda Runtime (invalid argument)"],
    ),
    (
        "IBuilder::buildSerializedNetwork: Error Code 9: API Usage Error (Target GPU SM 60 is not "
        "supported by this TensorRT release.)",
        ["no kernel image is available for execution on the device"],
    ),
    (
        "pycuda._driver.LogicError: cuMemcpyHtoDAsync failed: invalid argument",
        ["cuMemcpyHtoDAsync failed: invalid argument"],
    ),
    ("pycuda._driver.LogicError: cuMemAlloc failed: not initialized", ["failed: not initialized"]),
    ("pycuda._driver.LogicError: cuCtxPopCurrent failed: initialization error", ["failed: not initialized"]),
    (
        "[E] 1: [stdArchiveReader.cpp::stdArchiveReaderInitCommon::47] Error Code 1: Serialization "
        "(Serialization assertion stdVersionRead == kSERIALIZATION_VERSION failed.Version tag does not "
        "match. Note: Current Version: 228, Serialized Engine Version: 239)",
        ["plan file is not compatible"],
    ),
    (
        "Error Code 1: Serialization (Serialization assertion magicTagRead == kMAGIC_TAG failed.Magic "
        "tag does not match)",
        ["Magic tag does not match"],
    ),
    (
        "[TensorRT] ERROR: 3: getPluginCreator could not find plugin: ScatterND version: 1",
        ["getPluginCreator could not find plugin"],
    ),
    (
        "Error Code 3: API Usage Error (Parameter check failed at: runtime/api/executionContext.cpp::"
        "setInputShape::2068, condition: satisfyProfile Runtime dimension does not satisfy any "
        "optimization profile.)",
        ["does not satisfy any optimization profile"],
    ),
    (
        'Assertion failed: !isDynamic(tensorPtr->getDimensions()) && "InstanceNormalization does not '
        'support dynamic inputs!"',
        ["InstanceNormalization does not support dynamic inputs"],
    ),
    (
        "Error Code 10: Internal Error (Could not find any implementation for node ArgMax_260.)",
        ["Could not find any implementation for node"],
    ),
    (
        "RuntimeError: CUDA error: CUDA driver version is insufficient for CUDA runtime version",
        ["CUDA driver version is insufficient for CUDA runtime version"],
    ),
]


@pytest.mark.parametrize(("log", "expected"), PASTED)
def test_explain_knows_what_users_paste(log: str, expected: list[str]) -> None:
    assert [row.patterns[0] for row in explain(log)] == expected


def test_cutensor_row_names_both_of_its_causes() -> None:
    [row] = explain("Internal cuTensor permutate execute failed")
    assert "invalid resource handle" in row.cause and "no kernel image" in row.cause


def test_every_source_is_a_public_report() -> None:
    for row in EXPLANATIONS:
        assert all(u.startswith("https://github.com/") and u.split("/")[-1].isdigit() for u in row.sources)


def test_a_removed_api_is_headed_by_what_it_is_not_by_another_name() -> None:
    """A pasted num_bindings error used to print under the heading `execute_async_v2`."""
    for log, removed in (
        ("'ICudaEngine' object has no attribute 'num_bindings'", "TensorRT 8 API"),
        ("type object 'BuilderFlag' has no attribute 'FP16'", "TensorRT 10 API"),
    ):
        heading = str(explain(log)[0]).splitlines()[0]
        assert heading.startswith(removed), heading


def test_every_row_matches_its_own_patterns_and_unrelated_text_nothing() -> None:
    for row in EXPLANATIONS:
        assert all(row in explain(pattern.upper()) for pattern in row.patterns)
        assert row.cause and row.fix and row.see
    assert explain("everything is fine") == []


def test_tensorrt_stubs_are_not_tensorrt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", types.ModuleType("tensorrt"))
    assert tensorrt_report()["usable"] is False
    real = types.SimpleNamespace(Builder=object, __version__="10.13.0.35")
    monkeypatch.setitem(sys.modules, "tensorrt", real)
    assert tensorrt_report() == {"usable": True, "version": "10.13.0.35", "emulator": False}
    emulator = types.SimpleNamespace(Builder=object, __version__="10.4.0", __trtemu__=True)
    monkeypatch.setitem(sys.modules, "tensorrt", emulator)
    report = tensorrt_report()
    assert report["emulator"] and report["version"].endswith("trtemu (TensorRT API emulator, not TensorRT)")
    assert "not TensorRT" in format_report({**doctor(), "tensorrt": report})


def test_doctor_without_gpu_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cuda.bindings", None)  # as if cuda-python were missing
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    report = doctor()
    assert report["gpu"]["available"] is False
    assert report["gpu"]["reason"].startswith("no GPU")
    assert report["tensorrt"]["usable"] is False
    text = format_report(report)
    assert "no GPU" in text and "No TensorRT" in text


def test_doctor_report_names_each_package_and_the_gpu_problem_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cuda.bindings", None)
    report = doctor()
    text = format_report(report)
    assert [line.split()[0] for line in text.splitlines()].count("tensorrt") == 1
    assert text.count(report["gpu"]["reason"]) == 1


def test_cuda_users_are_only_libraries_that_hold_cuda() -> None:
    def ns(**kw):
        return types.SimpleNamespace(**kw)

    cpu_ort = ns(get_available_providers=lambda: ["CPUExecutionProvider"])
    gpu_ort = ns(get_available_providers=lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    stubs = types.ModuleType("tensorrt")  # what `import tensorrt` gives with only tensorrt-stubs
    idle_torch = ns(cuda=ns(is_initialized=lambda: False))
    assert cuda_users({"onnxruntime": cpu_ort, "tensorrt": stubs, "torch": idle_torch, "numpy": ns()}) == []
    busy = {
        "onnxruntime": gpu_ort,
        "tensorrt": ns(Builder=object),
        "torch": ns(cuda=ns(is_initialized=lambda: True)),
        "cupy": ns(),
        "pycuda.autoinit": ns(),
        "pycuda.autoprimaryctx": None,  # a failed import leaves None in sys.modules
    }
    assert cuda_users(busy) == ["torch", "cupy", "onnxruntime", "tensorrt", "pycuda.autoinit"]


def test_advice_names_autoinit() -> None:
    report = {
        "gpu": {"available": True},
        "tensorrt": {"usable": True},
        "cuda_users_loaded": ["pycuda.autoinit", "torch"],
        "context": {"is_primary": False},
    }
    notes = " ".join(advice(report))
    assert "pycuda.autoprimaryctx" in notes and "non-primary" in notes


def test_importing_the_cuda_layer_loads_no_gpu_library() -> None:
    code = (
        "import sys, helpers.cuda.check, helpers.cuda.context, helpers.cuda.memory, "
        "helpers.cuda.stream, helpers.cuda.graph, helpers.cuda.doctor, helpers.cuda.explain, "
        "helpers.cuda.demos, helpers.cuda.evidence, helpers.cuda.diagram, helpers.trt.timing; "
        "print(sorted(m for m in ('pycuda', 'cuda.bindings', 'cupy', 'torch') if m in sys.modules))"
    )
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_planted_answer_decodes_to_its_face_and_unwritten_tables_to_none() -> None:
    import numpy as np

    from helpers.cuda.demos import OUTPUT_SHAPE, PLANTED_BOX, decode_standin, describe_output, planted_output

    faces = decode_standin(planted_output())
    assert len(faces) == 1
    np.testing.assert_allclose(faces.boxes[0], PLANTED_BOX, atol=1e-3)
    assert faces.landmarks is not None and faces.landmarks.shape == (1, 5, 2)
    for poison in (np.nan, 0.0):
        table = np.full(OUTPUT_SHAPE, poison, np.float32)
        assert len(decode_standin(table)) == 0
        assert describe_output(table, poison).endswith("(not written)")
    assert describe_output(planted_output()) == "the engine's answer (written)"


def _variant(gpu: float, wall: float) -> dict:
    return {"gpu_ms": {"total": summarize([gpu])}, "wall_ms": summarize([wall])}


def test_ratios_and_table() -> None:
    from helpers.cuda.evidence import benchmark_table, ratios

    variants = {"a": _variant(2.0, 4.0), "b": _variant(1.0, 1.0)}
    assert ratios(variants) == {"gpu b / a": 0.5, "wall b / a": 0.25}
    table = benchmark_table({"variants": variants, "ratios_of_medians": ratios(variants)})
    assert table.splitlines()[2].split()[:2] == ["a", "2.000"]
    assert "gpu b / a: 0.500" in table


def test_recorded_evidence_is_labelled(tmp_path: Path) -> None:
    import json

    from helpers.cuda.evidence import recorded_checks, recorded_source

    report = {
        "recorded_at": "2026-11-24 00:00 UTC",
        "command": "pip install --target /tmp/site .whl/*.whl && python3 scripts/gpu_evidence.py",
        "doctor": {"gpu": {"driver_cuda_version": "13.0", "devices": [{"name": "NVIDIA H100"}]}},
        "checks": [{"name": "x", "observed": "CUDA_ERROR_INVALID_HANDLE", "pass": True}],
    }
    path = tmp_path / "gpu_evidence.json"
    path.write_text(json.dumps(report))
    text = recorded_checks("x", "missing", path=path)
    assert text.startswith("RECORDED on NVIDIA H100 (CUDA driver 13.0), 2026-11-24 00:00 UTC")
    assert "x: CUDA_ERROR_INVALID_HANDLE  [as expected]" in text and "missing: -" in text
    source = recorded_source(path)
    assert source.endswith("python scripts/gpu_evidence.py --out my_evidence.json")
    assert report["command"] not in source, "the recording machine's command is not one a reader can run"
    assert recorded_checks(path=tmp_path / "none.json").startswith("no recorded evidence")


def test_handles_fall_back_to_int_without_get_cuda_native_handle(monkeypatch: pytest.MonkeyPatch) -> None:
    """cuda-python before 12.9.1 (NVIDIA's samples pin 12.8 / 12.9.0) has no get_cuda_native_handle."""
    from helpers.cuda import bindings

    class Handle:
        def __int__(self) -> int:
            return 0x1234

    bindings._native_handle.cache_clear()
    monkeypatch.setitem(sys.modules, "cuda.bindings.utils", types.ModuleType("cuda.bindings.utils"))
    try:
        assert bindings._native_handle() is None
        assert bindings.native(Handle()) == 0x1234
    finally:
        bindings._native_handle.cache_clear()


def test_old_cuda_python_layout_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    """cuda-python 12.6.0 and older: `cuda.cuda` / `cuda.cudart`, no `cuda.bindings`."""
    from helpers.cuda import bindings

    old_driver = types.ModuleType("cuda.cuda")
    monkeypatch.setitem(sys.modules, "cuda.bindings.driver", None)  # None: import fails
    monkeypatch.setitem(sys.modules, "cuda.cuda", old_driver)
    assert bindings.driver() is old_driver
    monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", None)
    monkeypatch.setitem(sys.modules, "cuda.cudart", None)
    with pytest.raises(UserError, match=r"cuda-python is not installed.*cuda-python>=12\.9\.1,<13"):
        bindings.runtime()


def test_imported_cuda_python_modules_come_from_sys_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    """Graph replays ask for the runtime every frame, from any thread: once imported, the lookup
    must not enter catch_warnings again (it swaps the process-wide filters, not thread-safe)."""
    from helpers.cuda import bindings

    old_driver = types.ModuleType("cuda.cuda")
    monkeypatch.setitem(sys.modules, "cuda.bindings.driver", None)
    monkeypatch.setitem(sys.modules, "cuda.cuda", old_driver)
    assert bindings.driver() is old_driver

    def swap_filters(*args: object, **kwargs: object) -> None:
        raise AssertionError("catch_warnings entered again")

    monkeypatch.setattr(bindings, "warnings", types.SimpleNamespace(catch_warnings=swap_filters))
    assert bindings.driver() is old_driver


@pytest.mark.parametrize(
    ("driver", "builds", "cuda_python", "expected"),
    [
        (13, {"tensorrt": 13, "cuda-python": 13, "cupy": 13}, (13, 0, 1), []),
        (12, {"tensorrt": 12, "cuda-python": 13}, (13, 0, 1), ["cuda-python is a CUDA 13 build", "two CUDA"]),
        (12, {"cupy": 13}, None, ["cupy is a CUDA 13 build but the driver supports CUDA 12"]),
        (13, {"tensorrt": 12, "cuda-python": 13}, (13, 1, 0), ["pip install 'cuda-python>=12.9.1,<13'"]),
        (12, {"tensorrt": 12, "cuda-python": 12}, (12, 8, 0), ["predates 12.9.1"]),
        (None, {"tensorrt": 13}, (12, 9, 1), []),
    ],
)
def test_version_notes_name_each_mismatch(driver, builds, cuda_python, expected) -> None:
    from helpers.cuda.versions import version_notes

    notes = " | ".join(version_notes(driver, builds, cuda_python))
    for text in expected:
        assert text in notes
    assert bool(notes) == bool(expected)


@pytest.mark.parametrize(
    ("version", "major"), [("1.18.1", 11), ("1.19.0", 12), ("1.26.2", 12), ("1.27.0", 13)]
)
def test_onnxruntime_gpu_wheels_are_mapped_to_their_cuda_major(version: str, major: int) -> None:
    from helpers.cuda.versions import onnxruntime_gpu_cuda, version_notes

    assert onnxruntime_gpu_cuda(version) == major
    if major == 13:
        assert "onnxruntime-gpu is a CUDA 13 build" in " ".join(
            version_notes(12, {"onnxruntime-gpu": major}, None)
        )


def test_installed_cuda_builds_are_read_from_distribution_names() -> None:
    from importlib import metadata

    from helpers.cuda.versions import cuda_builds, cuda_python_version

    builds = cuda_builds()
    version = cuda_python_version()
    if version is None:
        pytest.skip("cuda-python is not installed here")
    assert builds["cuda-python"] == version[0] == int(metadata.version("cuda-bindings").split(".")[0])


def test_drop_frames_frees_what_a_failed_call_held() -> None:
    """The locals of a finished frame (a TensorRT builder, say) go when asked, not with the exception."""
    import gc
    import weakref

    from helpers.cuda.context import drop_frames

    class Builder:
        pass

    def build(ref: list) -> None:
        builder = Builder()
        ref.append(weakref.ref(builder))
        raise ValueError("parse failed")

    refs: list = []
    try:
        try:
            build(refs)
        except ValueError as inner:
            raise UserError("could not build") from inner
    except UserError as exc:
        gc.collect()
        assert refs[0]() is not None  # kept alive by the traceback
        drop_frames(exc)
        gc.collect()
        assert refs[0]() is None
        assert "parse failed" in str(exc.__cause__)


def test_engine_streams_are_made_non_blocking(monkeypatch):
    """A blocking stream that captures a CUDA graph makes the legacy default stream unusable for
    every other thread (cudaErrorStreamCaptureImplicit): engine streams are non-blocking."""
    from helpers.cuda import stream

    flags: list[int] = []
    driver = types.SimpleNamespace(Stream=lambda flags_=0, **kw: flags.append(kw.get("flags", flags_)))
    monkeypatch.setattr(stream, "pycuda_driver", lambda: driver)
    stream.Stream()
    assert flags == [1]  # CU_STREAM_NON_BLOCKING


def test_doctor_says_whether_the_shared_photos_were_found(monkeypatch, tmp_path) -> None:
    from helpers.photos import PHOTOS

    monkeypatch.setenv("SCRFD_IMAGE_DIR", str(tmp_path))
    (tmp_path / PHOTOS[1]).write_bytes(b"")
    line = next(x for x in format_report(doctor()).splitlines() if x.startswith("photos"))
    assert f"1 of 3 test photos in {tmp_path}" in line
    assert "missing t1.jpg, Tom_Hanks_54745.png; set SCRFD_IMAGE_DIR" in line and "crowd48.png" in line
    for name in PHOTOS:
        (tmp_path / name).write_bytes(b"")
    line = next(x for x in format_report(doctor()).splitlines() if x.startswith("photos"))
    assert line.split(None, 1)[1] == f"3 of 3 test photos in {tmp_path}"
