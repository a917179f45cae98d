"""Build decisions made before TensorRT is called: options, ONNX input, profile, precision route."""

from __future__ import annotations

import onnx
import pytest
from onnx import TensorProto, helper
from synthetic import scrfd_like

from helpers.errors import UserError
from helpers.trt.build import (
    BuildOptions,
    OnnxInput,
    PrecisionPlan,
    format_parser_error,
    precision_plan,
    read_onnx_input,
    resolve_profile,
)
from helpers.trt.specs import Profile

DYNAMIC = OnnxInput("input.1", (1, 3, "?", "?"))
STATIC = OnnxInput("input.1", (1, 3, 640, 640))


@pytest.mark.parametrize(
    ("precision", "fp16_flag", "strongly_typed", "plan"),
    [
        ("fp32", True, True, PrecisionPlan(True, False, False)),  # 10.x fp32: strongly typed
        ("fp32", False, True, PrecisionPlan(True, False, False)),  # 11.x fp32
        ("fp16", True, True, PrecisionPlan(False, True, False)),  # 10.x: FP16 flag, weakly typed
        ("fp16", False, True, PrecisionPlan(True, False, True)),  # 11.x: AutoCast ONNX
        ("fp32", True, False, PrecisionPlan(False, False, False)),  # before STRONGLY_TYPED existed
    ],
)
def test_precision_route_follows_what_the_module_offers(precision, fp16_flag, strongly_typed, plan):
    assert precision_plan(precision, fp16_flag, strongly_typed) == plan


def test_fp16_flag_is_never_combined_with_strong_typing():
    for flag in (True, False):
        for typed in (True, False):
            route = precision_plan("fp16", flag, typed)
            assert not (route.fp16_flag and route.strongly_typed)
            assert route.fp16_flag != route.autocast


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (BuildOptions(precision="int8"), "use fp32 or fp16"),
        (BuildOptions(opt_level=6), "outside 0..5"),
        (BuildOptions(opt_level=-1), "outside 0..5"),
        (BuildOptions(workspace=0), "positive"),
    ],
)
def test_bad_options_are_one_line_user_errors(options, message):
    with pytest.raises(UserError, match=message):
        options.check()


def test_default_options_pass():
    BuildOptions().check()
    BuildOptions(precision="fp16", opt_level=5, workspace=1 << 30).check()


def test_read_onnx_input_of_a_dynamic_export(tmp_path):
    found = read_onnx_input(scrfd_like(tmp_path / "m.onnx"))
    assert found == OnnxInput("input", (1, 3, "h", "w"))
    assert found.dynamic


def test_read_onnx_input_of_real_models(model_path):
    found = read_onnx_input(model_path)
    assert found.dims[:2] == (1, 3)
    # The numbered 500m/2.5g exports are dynamic; the bnkps export here is fixed at 640x640.
    assert found.dynamic == (model_path.stem != "scrfd_500m_bnkps")


def test_read_onnx_input_skips_initializers_listed_as_inputs(tmp_path):
    weight = helper.make_tensor("w", TensorProto.FLOAT, [1], [1.0])
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "w"], ["y"])],
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 640, 640]),
            helper.make_tensor_value_info("w", TensorProto.FLOAT, [1]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 640, 640])],
        [weight],
    )
    path = tmp_path / "old_style.onnx"
    onnx.save(helper.make_model(graph), str(path))
    assert read_onnx_input(path) == OnnxInput("x", (1, 3, 640, 640))


def test_read_onnx_input_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        read_onnx_input(tmp_path / "missing.onnx")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x08\x07garbage" * 10)
    with pytest.raises(UserError, match="cannot read ONNX"):
        read_onnx_input(broken)


def test_static_model_needs_no_profile_and_refuses_profile_flags():
    assert resolve_profile(STATIC, BuildOptions()) is None
    with pytest.raises(UserError, match="--max applies only to dynamic"):
        resolve_profile(STATIC, BuildOptions(max_shape=(1, 3, 1280, 1280)))
    with pytest.raises(UserError, match="--min and --max apply only to dynamic"):
        resolve_profile(STATIC, BuildOptions(min_shape=(1, 3, 320, 320), max_shape=(1, 3, 1280, 1280)))


def test_dynamic_model_gets_the_default_profile():
    assert resolve_profile(DYNAMIC, BuildOptions()) == Profile(
        (1, 3, 128, 128), (1, 3, 640, 640), (1, 3, 640, 640)
    )


def test_explicit_min_opt_max_and_sizes_shape_the_profile():
    options = BuildOptions(max_shape=(1, 3, 1280, 1280), sizes=((1, 3, 480, 640),))
    assert resolve_profile(DYNAMIC, options) == Profile(
        (1, 3, 128, 128), (1, 3, 640, 640), (1, 3, 1280, 1280)
    )
    options = BuildOptions(min_shape=(1, 3, 320, 320), opt_shape=(1, 3, 480, 640), max_shape=(1, 3, 640, 640))
    assert resolve_profile(DYNAMIC, options) == Profile((1, 3, 320, 320), (1, 3, 480, 640), (1, 3, 640, 640))
    with pytest.raises(UserError, match="min <= opt <= max"):
        resolve_profile(DYNAMIC, BuildOptions(min_shape=(1, 3, 800, 800), max_shape=(1, 3, 640, 640)))
    with pytest.raises(UserError, match="axis 1"):
        resolve_profile(DYNAMIC, BuildOptions(max_shape=(1, 4, 640, 640)))


@pytest.mark.parametrize(
    ("args", "text"),
    [
        ((12, "conv_5", "Conv", "bad pads"), "node 12 (Conv 'conv_5'): bad pads"),
        ((3, "", "Resize", "unsupported mode"), "node 3 (Resize): unsupported mode"),
        ((-1, "", "", "invalid protobuf"), "model: invalid protobuf"),
    ],
)
def test_parser_errors_name_their_node(args, text):
    assert format_parser_error(*args) == text
