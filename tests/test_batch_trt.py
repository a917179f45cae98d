"""The TensorRT side of batching on the CPU: the profile's batch range, the cache key, and the
build under trtemu's fake-GPU mode (trtemu: TensorRT API emulator, not TensorRT).

What runs an engine at batch N is in tests/test_batch_gpu.py (GPU, skipped by name here).
"""

from __future__ import annotations

import pytest
from conftest import named_model
from test_cli import assert_one_line_error, cli
from test_trtemu_api import TRTEMU, under_trtemu

from helpers.batch.batchify import batchify
from helpers.errors import UserError
from helpers.trt.build import BuildOptions, OnnxInput, resolve_profile
from helpers.trt.cache import BuildKey, Target


def test_a_batch_range_sets_the_profiles_batch_beside_the_sizes():
    dynamic = OnnxInput("input.1", ("batch", 3, "?", "?"))
    profile = resolve_profile(dynamic, BuildOptions(batch=(1, 4, 8), sizes=((1, 3, 480, 640),)))
    assert profile is not None
    assert (profile.min, profile.opt, profile.max) == ((1, 3, 128, 128), (4, 3, 640, 640), (8, 3, 640, 640))
    assert resolve_profile(dynamic, BuildOptions()).max[0] == 1  # no range: batch 1 as before


def test_a_batchable_static_export_keeps_its_size_and_takes_the_range():
    static = OnnxInput("input.1", ("batch", 3, 640, 640))
    profile = resolve_profile(static, BuildOptions(batch=(2, 2, 16)))
    assert profile is not None
    assert (profile.min, profile.opt, profile.max) == ((2, 3, 640, 640), (2, 3, 640, 640), (16, 3, 640, 640))


@pytest.mark.parametrize("dims", [(1, 3, "?", "?"), (1, 3, 640, 640)])
def test_a_batch_one_export_refuses_a_range_and_names_batchify(dims):
    with pytest.raises(UserError, match=r"fixed at batch 1.*batchify"):
        resolve_profile(OnnxInput("input.1", dims), BuildOptions(batch=(1, 4, 8)))
    assert resolve_profile(OnnxInput("input.1", dims), BuildOptions(batch=(1, 1, 1))) == resolve_profile(
        OnnxInput("input.1", dims), BuildOptions()
    )


def test_the_engine_cache_keys_on_the_batch_range():
    dynamic = OnnxInput("input.1", ("batch", 3, "?", "?"))
    target = Target("10.13.0", "NVIDIA H200", "9.0")
    keys = {
        BuildKey("0" * 64, target, "fp32", resolve_profile(dynamic, BuildOptions(batch=b)), 3, None).digest()
        for b in [(1, 1, 1), (1, 4, 8), (1, 8, 8), None]
    }
    assert len(keys) == 3  # None and (1, 1, 1) are the same profile


def test_build_refuses_an_unordered_batch_range_in_one_line():
    assert_one_line_error(
        cli("build", named_model("scrfd_500m"), "--batch-range", "4", "2", "8"), "--batch-range 4 2 8"
    )


@pytest.mark.skipif(not (TRTEMU / "tensorrt").is_dir(), reason="trtemu (TensorRT API emulator) not found")
@pytest.mark.parametrize("name", ["scrfd_2.5g", "scrfd_500m_bnkps"])
def test_trtemu_builds_a_batch_profile_and_sizes_outputs_per_batch(name, tmp_path):
    model = batchify(named_model(name), cache_dir=tmp_path)
    out = under_trtemu(
        """
        from helpers.trt.specs import specs_from_engine
        path = Path(sys.argv[1])
        options = BuildOptions(batch=(1, 4, 8))
        profile = resolve_profile(read_onnx_input(path), options)
        target = Target(trt.__version__, "NVIDIA H200", "9.0")
        key = BuildKey(file_sha256(path), target, "fp32", profile, 3, None)
        plan, _ = _build_plan(path, options, profile, EngineCache(Path(sys.argv[2])), key, ProgressState())
        engine = trt.Runtime(trt.Logger(trt.Logger.WARNING)).deserialize_cuda_engine(plan)
        specs = specs_from_engine(engine)
        [image] = [s for s in specs if s.is_input]
        context = engine.create_execution_context()
        h, w = (image.profile.max[2], image.profile.max[3])
        shapes = {}
        for n in (3, 8):
            ok = context.set_input_shape(image.name, (n, 3, h, w))
            batches = {tuple(context.get_tensor_shape(s.name))[0] for s in specs if not s.is_input}
            shapes[n] = [ok, sorted(batches)]
        too_many = context.set_input_shape(image.name, (9, 3, h, w))
        print(json.dumps({"input": list(image.shape), "min": list(image.profile.min),
                          "max": list(image.profile.max), "shapes": shapes, "nine": too_many}))
        """,
        model,
        tmp_path,
    )
    assert out["input"][0] == -1 and out["min"][0] == 1 and out["max"][0] == 8
    assert out["shapes"] == {"3": [True, [3]], "8": [True, [8]]}
    assert out["nine"] is False  # outside the profile
