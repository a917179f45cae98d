"""Engine tensor specs and shape arithmetic: concrete sizes, profiles, execute_v2 order."""

from __future__ import annotations

import pytest

from helpers.errors import UserError
from helpers.trt.specs import (
    Profile,
    TensorSpec,
    check_in_profile,
    check_profile_fits,
    default_profile,
    dtype_name,
    execute_v2_bindings,
    nbytes,
    parse_shape,
    require_concrete,
)

DYNAMIC = Profile((1, 3, 128, 128), (1, 3, 640, 640), (1, 3, 1280, 1280))


def spec(name: str, index: int, is_input: bool = False, shape=(-1, 1), profile=None) -> TensorSpec:
    return TensorSpec(name, index, is_input, "float32", tuple(shape), profile)


def test_profile_rejects_unordered_and_mixed_ranks():
    with pytest.raises(UserError, match="min <= opt <= max"):
        Profile((1, 3, 640, 640), (1, 3, 320, 320), (1, 3, 1280, 1280))
    with pytest.raises(UserError, match="mixes ranks"):
        Profile((1, 3, 128), (1, 3, 640, 640), (1, 3, 1280, 1280))
    with pytest.raises(UserError):
        Profile((1, 3, 0, 128), (1, 3, 640, 640), (1, 3, 1280, 1280))


def test_profile_contains_and_round_trips():
    assert DYNAMIC.contains((1, 3, 480, 640))
    assert not DYNAMIC.contains((1, 3, 96, 640))
    assert not DYNAMIC.contains((1, 3, 640))
    assert Profile.from_json(DYNAMIC.to_json()) == DYNAMIC
    assert str(DYNAMIC) == "[1x3x128x128 .. 1x3x1280x1280], opt 1x3x640x640"


def test_info_shows_profile_ranges_for_dynamic_inputs():
    image = spec("input.1", 0, True, (1, 3, -1, -1), DYNAMIC)
    assert image.dynamic
    assert image.info().shape == (1, 3, "128..1280", "128..1280")
    assert spec("score_8", 1, shape=(-1, 1)).info().shape == ("?", 1)
    assert spec("score_8", 1, shape=(12800, 1)).info().shape == (12800, 1)


def test_dtype_names_map_and_unknown_is_refused():
    assert dtype_name("FLOAT") == "float32"
    assert dtype_name("HALF") == "float16"
    with pytest.raises(UserError, match="not supported"):
        dtype_name("FP4")


def test_unknown_dims_are_refused_before_sizing():
    assert require_concrete("x", [1, 3, 640, 640]) == (1, 3, 640, 640)
    with pytest.raises(UserError, match="set_input_shape"):
        require_concrete("input.1", (1, 3, -1, -1))
    with pytest.raises(UserError, match="unknown"):
        nbytes("score_8", (-1, 1), "float32")


def test_nbytes():
    assert nbytes("input.1", (1, 3, 640, 640), "float32") == 1 * 3 * 640 * 640 * 4
    assert nbytes("x", (2, 5), "float16") == 20
    assert nbytes("scalar", (), "int32") == 4
    with pytest.raises(UserError, match="keep_io_types"):
        nbytes("x", (1, 3), "float8")


def test_execute_v2_bindings_follow_engine_index_not_given_order():
    # Engine order interleaves inputs and outputs; specs arrive shuffled.
    specs = [spec("kps_8", 2), spec("input.1", 0, True), spec("score_8", 1), spec("bbox_8", 3)]
    addresses = {"input.1": 0x1000, "score_8": 0x2000, "kps_8": 0x3000, "bbox_8": 0x4000}
    assert execute_v2_bindings(specs, addresses) == [0x1000, 0x2000, 0x3000, 0x4000]


def test_execute_v2_bindings_refuse_missing_or_null_addresses_and_index_gaps():
    specs = [spec("input.1", 0, True), spec("score_8", 1)]
    with pytest.raises(UserError, match="score_8"):
        execute_v2_bindings(specs, {"input.1": 0x1000})
    with pytest.raises(UserError, match=r"input\.1"):
        execute_v2_bindings(specs, {"input.1": 0, "score_8": 0x2000})
    with pytest.raises(ValueError, match=r"0\.\.n-1"):
        execute_v2_bindings([spec("a", 0), spec("b", 2)], {"a": 1, "b": 2})


@pytest.mark.parametrize(
    ("text", "shape"),
    [("640", (1, 3, 640, 640)), ("1x3x480x640", (1, 3, 480, 640)), ("1X3X32X64", (1, 3, 32, 64))],
)
def test_parse_shape(text, shape):
    assert parse_shape(text) == shape


@pytest.mark.parametrize("text", ["480x640", "abc", "0", "1x3x-1x640", ""])
def test_parse_shape_refuses(text):
    with pytest.raises(UserError, match="NxCxHxW"):
        parse_shape(text)


def test_default_profile_covers_insightface_two_scales():
    profile = default_profile()
    assert profile == Profile((1, 3, 128, 128), (1, 3, 640, 640), (1, 3, 640, 640))
    assert profile.contains((1, 3, 128, 128)) and profile.contains((1, 3, 640, 640))


def test_default_profile_widens_for_requested_sizes():
    profile = default_profile([(1, 3, 480, 1280), (1, 3, 96, 640)])
    assert profile.min == (1, 3, 96, 128)
    assert profile.opt == (1, 3, 640, 640)
    assert profile.max == (1, 3, 640, 1280)
    assert default_profile([], opt=(1, 3, 1024, 1024)).max == (1, 3, 1024, 1024)


def test_default_profile_refuses_sizes_strides_cannot_tile():
    with pytest.raises(UserError, match="multiples of 32"):
        default_profile([(1, 3, 500, 640)])


def test_profile_must_keep_fixed_network_dims():
    check_profile_fits("input.1", (1, 3, "?", "?"), DYNAMIC)
    with pytest.raises(UserError, match="axis 1"):
        check_profile_fits(
            "input.1", (1, 3, "?", "?"), Profile((1, 1, 128, 128), (1, 3, 640, 640), (1, 3, 640, 640))
        )
    with pytest.raises(UserError, match="rank"):
        check_profile_fits("input.1", (1, 3, "?"), DYNAMIC)


def test_runtime_shape_must_lie_in_profile():
    dynamic = spec("input.1", 0, True, (1, 3, -1, -1), DYNAMIC)
    check_in_profile(dynamic, (1, 3, 480, 640))
    with pytest.raises(UserError, match="--max 1x3x1920x1920"):
        check_in_profile(dynamic, (1, 3, 1920, 1920))
    fixed = spec("input.1", 0, True, (1, 3, 640, 640))
    check_in_profile(fixed, (1, 3, 640, 640))
    with pytest.raises(UserError, match="fixed at 1x3x640x640"):
        check_in_profile(fixed, (1, 3, 480, 640))
