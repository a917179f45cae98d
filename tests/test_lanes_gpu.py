"""TensorRT lanes on a GPU, as a service runs them: 8 worker threads over one lane pool, under no
context, `pycuda.autoinit` and `pycuda.autoprimaryctx`, for v2, v3, graph, GPU stages and GPU
stages with a graph: every result equal to one thread's, the engine deserialised once.

Each setup runs in a fresh process (pycuda.autoinit changes the whole process). Needs TensorRT
(or trtemu, the API emulator, not TensorRT) with pycuda, CuPy for the GPU stages, and a GPU;
skipped by name elsewhere.
"""

from __future__ import annotations

import pytest
import test_trt_threads as threads
from conftest import named_model

pytestmark = threads.pytestmark  # TensorRT (or trtemu), pycuda and a GPU, skipped by name elsewhere

SCENARIO = """
{setup}
from helpers.images import read_image
from helpers.lanes import tensorrt_lanes
from helpers.samples import sample_path
from helpers.trt import engine as engine_module

METHOD, PREPROCESS = {method!r}, {preprocess!r}
loads = []
deserialize = engine_module.deserialize
engine_module.deserialize = lambda *a: loads.append(a[1].name) or deserialize(*a)
frames = [read_image(sample_path(n)) for n in ("astronaut.png", "crowd48.png", "large_face.png")]
pool = tensorrt_lanes(MODEL, 4, METHOD, preprocess=PREPROCESS, cache_dir=CACHE, progress=False)
one = [f.to_json() for f in pool.map(frames, workers=1)]
many = [f.to_json() for f in pool.map(frames * 16, workers=8)]
stages = [lane.detector.stages for lane in pool.lanes]
graphs = [
    s._captured is not None if s is not None else lane.detector.backend.runner._graph is not None
    for s, lane in zip(stages, pool.lanes)
]
contexts = len({{id(lane.detector.backend.context) for lane in pool.lanes}})
streams = len({{lane.detector.backend.stream_handle for lane in pool.lanes}})
engine = pool.shared
pool.close()
print(json.dumps({{
    "equal": many == one * 16, "faces": [len(f) for f in one],
    "loads": loads, "lanes_left": engine.lanes, "graphs": graphs, "gpu_stages": stages[0] is not None,
    "contexts": contexts, "streams": streams, "name": pool.name,
}}))
"""

SETUPS = {
    "no-context": "",
    "autoinit": "import pycuda.autoinit",
    "autoprimaryctx": "import pycuda.autoprimaryctx",
}
WAYS = [("v2", "cpu"), ("v3", "cpu"), ("graph", "cpu"), ("v3", "gpu"), ("graph", "gpu")]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("engines")


@pytest.mark.parametrize("setup", SETUPS)
@pytest.mark.parametrize(("method", "preprocess"), WAYS)
def test_eight_threads_over_tensorrt_lanes_give_one_threads_results(setup, method, preprocess, cache):
    code = SCENARIO.format(setup=SETUPS[setup], method=method, preprocess=preprocess)
    out = threads.scenario(code, named_model("scrfd_2.5g"), cache)
    assert out["equal"], out
    assert any(out["faces"])  # faces were compared, not only empty frames
    assert len(out["loads"]) == 1  # one engine, deserialised once, for the four lanes
    assert out["contexts"] == 4 and out["streams"] == 4 and out["lanes_left"] == 0
    assert out["gpu_stages"] == (preprocess == "gpu")
    if method == "graph":
        assert all(out["graphs"]), out  # every lane replays a graph, not a silent fallback
