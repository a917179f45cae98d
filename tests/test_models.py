"""Model folder resolution and the checksummed fetch, exercised offline with file:// URLs."""

from __future__ import annotations

import hashlib
import io
import urllib.request
import zipfile
from dataclasses import replace

import pytest

from helpers import models
from helpers.errors import UserError


def make_pack(tmp_path, member_bytes=b"fake-onnx", member="det_x.onnx"):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(f"pack/{member}", member_bytes)
        z.writestr("pack/other.onnx", b"recognition model")
    blob = buf.getvalue()
    (tmp_path / "pack.zip").write_bytes(blob)
    pack = models.Pack(
        "det_x",
        "pack.zip",
        member,
        hashlib.sha256(blob).hexdigest(),
        hashlib.sha256(member_bytes).hexdigest(),
        len(blob),
    )
    return pack


def opener_for(tmp_path):
    return lambda url: urllib.request.urlopen((tmp_path / url.rsplit("/", 1)[1]).as_uri())


def test_fetch_verifies_and_writes_the_detector(tmp_path):
    pack = make_pack(tmp_path)
    out = models.fetch(pack, tmp_path / "models", opener_for(tmp_path))
    assert out == tmp_path / "models" / "det_x.onnx" and out.read_bytes() == b"fake-onnx"
    # a second fetch finds the verified file and downloads nothing
    assert models.fetch(pack, tmp_path / "models", lambda url: pytest.fail("downloaded again")) == out


def test_corrupt_zip_writes_nothing(tmp_path):
    pack = replace(make_pack(tmp_path), zip_sha256="0" * 64)
    with pytest.raises(UserError, match="SHA-256"):
        models.fetch(pack, tmp_path / "models", opener_for(tmp_path))
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())


def test_wrong_detector_checksum_writes_nothing(tmp_path):
    pack = replace(make_pack(tmp_path), sha256="1" * 64)
    with pytest.raises(UserError, match=r"det_x\.onnx in pack\.zip failed"):
        models.fetch(pack, tmp_path / "models", opener_for(tmp_path))
    assert not (tmp_path / "models" / "det_x.onnx").exists()


def test_missing_member_and_network_failure_are_one_liners(tmp_path):
    with pytest.raises(UserError, match=r"holds no det_x\.onnx"):
        pack = replace(make_pack(tmp_path, member="zzz.onnx"), member="det_x.onnx")
        models.fetch(pack, tmp_path / "m", opener_for(tmp_path))

    def offline(url):
        raise OSError("Network is unreachable")

    with pytest.raises(UserError, match=r"download of .* failed"):
        models.fetch(make_pack(tmp_path), tmp_path / "m2", offline)


def test_catalogue_points_at_insightface_release_packs():
    for pack in models.CATALOGUE.values():
        assert pack.url.startswith("https://github.com/deepinsight/insightface/releases/download/v0.7/")
        assert len(pack.sha256) == len(pack.zip_sha256) == 64
    assert models.DEFAULT_FETCH in models.CATALOGUE


def test_default_model_prefers_the_biggest_detector(tmp_path, monkeypatch):
    monkeypatch.setenv(models.ENV, str(tmp_path))
    for name in ("zzz.onnx", "scrfd_500m.onnx", "det_2.5g.onnx"):
        (tmp_path / name).write_bytes(b"x")
    assert models.resolve(None).name == "det_2.5g.onnx"
    assert models.resolve("scrfd_500m").name == "scrfd_500m.onnx"
    with pytest.raises(UserError, match="no model named 'nope'"):
        models.resolve("nope")
    with pytest.raises(UserError, match="does not exist"):
        models.resolve(str(tmp_path / "missing.onnx"))


def test_empty_model_folder_says_how_to_get_models(tmp_path, monkeypatch):
    monkeypatch.setenv(models.ENV, str(tmp_path))
    with pytest.raises(UserError, match="models fetch"):
        models.resolve(None)
