"""The engine cache: keys, manifests, and "rebuild with a reason" instead of crashes."""

from __future__ import annotations

import dataclasses
import json

import pytest

from helpers.trt.cache import BuildKey, EngineCache, Target, describe_mismatch, plan_manifest, read_manifest
from helpers.trt.specs import Profile

H100 = Target("10.13.0.35", "NVIDIA H100 80GB HBM3", "9.0")
KEY = BuildKey(
    "ab" * 32, H100, "fp32", Profile((1, 3, 128, 128), (1, 3, 640, 640), (1, 3, 640, 640)), 3, None
)
PLAN = b"\x00plan bytes\xff" * 100


def test_digest_is_stable_and_covers_every_field():
    assert KEY.digest() == dataclasses.replace(KEY).digest()
    variants = [
        dataclasses.replace(KEY, onnx_sha256="cd" * 32),
        dataclasses.replace(KEY, target=dataclasses.replace(H100, tensorrt_version="11.4.0.106")),
        dataclasses.replace(KEY, target=dataclasses.replace(H100, gpu_name="NVIDIA H200")),
        dataclasses.replace(KEY, target=dataclasses.replace(H100, compute_capability="8.9")),
        dataclasses.replace(KEY, precision="fp16"),
        dataclasses.replace(KEY, profile=None),
        dataclasses.replace(KEY, opt_level=5),
        dataclasses.replace(KEY, workspace=1 << 30),
    ]
    digests = {v.digest() for v in variants}
    assert len(digests) == len(variants) and KEY.digest() not in digests


def test_describe_mismatch_names_each_differing_field():
    manifest = {"key": KEY.fields()}
    assert describe_mismatch(manifest, KEY.fields()) == []
    other = dataclasses.replace(
        KEY, target=dataclasses.replace(H100, tensorrt_version="11.4.0.106"), onnx_sha256="cd" * 32
    )
    lines = describe_mismatch(manifest, other.fields())
    assert lines == [
        f"ONNX file (sha256): plan has {'ab' * 6}, wanted {'cd' * 6}",
        "TensorRT version: plan has 10.13.0.35, wanted 11.4.0.106",
    ]
    assert describe_mismatch({}, KEY.fields()) == ["the manifest has no build key"]


def test_store_then_lookup_hits(tmp_path):
    cache = EngineCache(tmp_path)
    entry = cache.store(KEY, "scrfd_500m", PLAN, json.dumps({"Layers": []}))
    assert entry.plan.read_bytes() == PLAN
    assert json.loads(entry.inspector.read_text()) == {"Layers": []}
    manifest = json.loads(entry.manifest.read_text())
    assert manifest["key"] == KEY.fields()
    assert manifest["plan"]["bytes"] == len(PLAN)
    found = cache.lookup(KEY, "scrfd_500m")
    assert found.plan == PLAN
    assert str(entry.plan) in found.reason
    assert not list(tmp_path.glob("*.tmp")), "atomic writes leave no temporary files"


def test_other_settings_miss_and_say_what_differs(tmp_path):
    cache = EngineCache(tmp_path)
    cache.store(KEY, "scrfd_500m", PLAN)
    newer = dataclasses.replace(KEY, target=dataclasses.replace(H100, tensorrt_version="10.14.1.48"))
    found = cache.lookup(newer, "scrfd_500m")
    assert found.plan is None
    assert "TensorRT version: plan has 10.13.0.35, wanted 10.14.1.48" in found.reason
    assert cache.lookup(KEY, "scrfd_2.5g").reason == "no cached engine for these settings"


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda e: e.manifest.write_text("{not json"), "unreadable"),
        (lambda e: e.manifest.write_text('{"format": 99}'), "unknown format"),
        (
            lambda e: e.manifest.write_text(json.dumps({"format": 1, "key": KEY.fields()})),
            "does not describe",
        ),
        (lambda e: e.plan.unlink(), "missing"),
        (lambda e: e.plan.write_bytes(PLAN[:-1]), "damaged"),
        (lambda e: e.plan.write_bytes(PLAN[::-1]), "damaged"),
    ],
)
def test_damaged_entries_mean_rebuild_not_crash(tmp_path, damage, reason):
    cache = EngineCache(tmp_path)
    damage(cache.store(KEY, "scrfd_500m", PLAN))
    found = cache.lookup(KEY, "scrfd_500m")
    assert found.plan is None
    assert reason in found.reason


def test_timing_cache_is_per_tensorrt_version_and_gpu(tmp_path):
    cache = EngineCache(tmp_path)
    here = cache.timing_cache(H100)
    assert here.parent == tmp_path and here.suffix == ".cache"
    assert "10-13-0-35" in here.name and "h100" in here.name
    assert cache.timing_cache(dataclasses.replace(H100, compute_capability="8.9")) != here
    assert cache.timing_cache(dataclasses.replace(H100, tensorrt_version="11.4.0.106")) != here


def test_plan_manifest_beside_a_plan_path(tmp_path):
    entry = EngineCache(tmp_path).store(KEY, "scrfd_500m", PLAN)
    manifest = plan_manifest(entry.plan)
    assert isinstance(manifest, dict) and manifest["model"] == "scrfd_500m"
    assert plan_manifest(tmp_path / "elsewhere.plan") == "no manifest"
    assert read_manifest(tmp_path / "nothing.json") == "no manifest"
