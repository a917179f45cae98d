"""The seed user's setups, end to end on a GPU: pycuda.autoinit, worker threads, two engines, GPU 1.

Each scenario runs in a fresh process (pycuda.autoinit changes the whole process) and reports
what it saw as JSON: whether every result matched ONNX Runtime, and the calling thread's CUDA
context stack before and after, read off the driver. A thread must end with exactly the stack
it had: a context left behind (or one taken away) breaks the user's next CUDA call.
Needs TensorRT (or trtemu, the API emulator) with pycuda and a GPU; skipped by name elsewhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from conftest import ROOT, model_dir

from helpers.trt.backend import tensorrt_available

AVAILABLE, WHY = tensorrt_available()
pytestmark = [
    pytest.mark.tensorrt,
    pytest.mark.gpu,
    pytest.mark.skipif(not AVAILABLE, reason=f"TensorRT not installed or not usable here: {WHY}"),
]
PRELUDE = """
import json, sys, threading
import numpy as np
from helpers.cuda import bindings
from helpers.ort_backend import OnnxRuntimeBackend
from helpers.trt.backend import TensorRTBackend
from helpers.trt.build import BuildOptions
MODEL, CACHE = sys.argv[1], sys.argv[2]
drv = bindings.driver()
drv.cuInit(0)

def stack():
    '''This thread's driver context stack, top first (popped to read, then pushed back).'''
    seen = []
    for _ in range(8):
        err, ctx = drv.cuCtxGetCurrent()
        if not bindings.native(ctx):
            break
        err, ctx = drv.cuCtxPopCurrent()
        seen.append(ctx)
    for ctx in reversed(seen):
        drv.cuCtxPushCurrent(ctx)
    return [bindings.native(c) for c in seen]

x = np.random.default_rng(0).normal(0, 0.5, (1, 3, 480, 640)).astype(np.float32)
FEED = {"input.1": x}
WANT = OnnxRuntimeBackend(MODEL, providers=["CPUExecutionProvider"]).run(FEED)

def same(got):
    return sorted(got) == sorted(WANT) and all(
        np.allclose(got[k], WANT[k], rtol=1e-2, atol=1e-2) for k in WANT
    )

def in_threads(fn, n):
    results = []
    threads = [threading.Thread(target=lambda: results.append(fn())) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results
"""


@pytest.fixture(scope="module")
def model():
    path = model_dir() / "scrfd_2.5g.onnx"
    if not path.is_file():
        pytest.skip("no scrfd_2.5g.onnx in SCRFD_MODEL_DIR")
    return path


def scenario(code: str, model, cache) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(code), str(model), str(cache)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "PyCUDA ERROR" not in result.stderr, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("module", ["pycuda.autoinit", "pycuda.autoprimaryctx"])
def test_user_context_then_backend_from_main_and_worker_threads(module, model, tmp_path):
    """The seed's setup: the user's pycuda context is current; the backend still works anywhere
    and, closed, leaves the user's context current and nothing of its own behind."""
    out = scenario(
        f"""
        import {module} as auto
        before = stack()
        backend = TensorRTBackend(MODEL, cache_dir=CACHE, progress=False)
        main = same(backend.run(FEED))
        during = stack()
        workers = in_threads(lambda: same(backend.run(FEED)), 4)
        backend.close()
        print(json.dumps({{"before": before, "during": during, "after": stack(),
                          "user": int(auto.context.handle), "main": main, "workers": workers}}))
        """,
        model,
        tmp_path,
    )
    assert out["before"] == out["during"] == out["after"] == [out["user"]]
    assert out["main"] and out["workers"] == [True] * 4


def test_many_threads_share_one_backend_and_two_backends_share_the_gpu(model, tmp_path):
    small = model_dir() / "scrfd_500m.onnx"
    if not small.is_file():
        pytest.skip("no scrfd_500m.onnx in SCRFD_MODEL_DIR")
    out = scenario(
        f"""
        WANT_SMALL = OnnxRuntimeBackend({str(small)!r}, providers=["CPUExecutionProvider"]).run(FEED)
        a = TensorRTBackend(MODEL, cache_dir=CACHE, progress=False)
        b = TensorRTBackend({str(small)!r}, cache_dir=CACHE, progress=False)

        def both():
            ok = []
            for _ in range(5):
                ok.append(same(a.run(FEED)))
                got = b.run(FEED)
                ok.append(all(np.allclose(got[k], WANT_SMALL[k], rtol=1e-2, atol=1e-2) for k in WANT_SMALL))
            return all(ok)

        workers = in_threads(both, 8)
        a.close()
        b.close()
        print(json.dumps({{"workers": workers, "after": stack()}}))
        """,
        model,
        tmp_path,
    )
    assert out["workers"] == [True] * 8 and out["after"] == []


def test_close_from_another_thread_waits_for_the_run(model, tmp_path):
    out = scenario(
        """
        from helpers.errors import UserError
        backend = TensorRTBackend(MODEL, cache_dir=CACHE, progress=False)
        seen, running = [], threading.Event()

        def keep_running():
            for _ in range(50):
                try:
                    seen.append(same(backend.run(FEED)))
                except UserError as exc:
                    seen.append(str(exc))
                    return
                running.set()

        worker = threading.Thread(target=keep_running)
        worker.start()
        running.wait(120)  # one run done, the next under way: close() comes mid-stream
        backend.close()
        worker.join()
        print(json.dumps({"seen": seen}))
        """,
        model,
        tmp_path,
    )
    results, last = out["seen"][:-1], out["seen"][-1]
    assert all(r is True for r in results)
    assert last is True or "was closed" in last


def test_a_failing_progress_display_does_not_cancel_a_real_build(model, tmp_path):
    out = scenario(
        """
        import warnings
        from helpers.trt import build

        class Broken:
            def __init__(self, state):
                state.subscribe(self.update)
            def update(self, state):
                raise RuntimeError("widget comm closed")
            def close(self, state, message):
                raise RuntimeError("widget comm closed")

        build.make_renderer = Broken
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = build.build_engine(MODEL, cache_dir=CACHE, rebuild=True, progress=True)
        print(json.dumps({"built": not result.cached, "warned": [str(w.message) for w in caught]}))
        """,
        model,
        tmp_path,
    )
    assert out["built"] and any("progress display failed" in w for w in out["warned"])


def test_engine_on_gpu_1_used_from_a_thread_where_gpu_0_is_current(model, tmp_path):
    out = scenario(
        """
        err, count = drv.cuDeviceGetCount()
        if count < 2:
            print(json.dumps({"skip": f"{count} GPU"}))
            raise SystemExit
        backend = TensorRTBackend(MODEL, options=BuildOptions(device=1), cache_dir=CACHE, progress=False)

        def from_device_0():
            rt = bindings.runtime()
            rt.cudaSetDevice(0)
            rt.cudaFree(0)  # device 0's primary context is now current on this thread
            ok = same(backend.run(FEED))
            err, device = drv.cuCtxGetDevice()
            return [ok, int(device)]

        workers = in_threads(from_device_0, 2)
        backend.close()
        print(json.dumps({"workers": workers, "device": backend.cuda.device}))
        """,
        model,
        tmp_path,
    )
    if "skip" in out:
        pytest.skip(f"needs two GPUs, this machine has {out['skip']}")
    assert out["device"] == 1 and out["workers"] == [[True, 0], [True, 0]]
