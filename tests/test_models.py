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


def test_download_failure_names_the_variable_and_where_a_hand_fetched_file_goes(tmp_path):
    def offline(url):
        raise OSError("Network is unreachable")

    pack = models.CATALOGUE["det_500m"]
    with pytest.raises(UserError) as failed:
        models.fetch(pack, tmp_path / "m", offline)
    message = str(failed.value)
    assert "\n" not in message and pack.url in message
    assert f"put the det_500m.onnx inside it at {tmp_path / 'm' / 'det_500m.onnx'}" in message
    assert "SCRFD_MODEL_DIR" in message


def test_no_models_is_one_line_naming_the_variable_and_the_fetch(tmp_path, monkeypatch):
    monkeypatch.setenv(models.ENV, str(tmp_path))
    with pytest.raises(
        UserError, match=r"^no \.onnx models in SCRFD_MODEL_DIR=.*models fetch.*SCRFD_MODEL_DIR"
    ):
        models.available()
    monkeypatch.setenv(models.ENV, str(tmp_path / "missing"))
    with pytest.raises(UserError, match=r"SCRFD_MODEL_DIR=.*missing is not a folder"):
        models.resolve(None)


def test_link_makes_the_models_findable_without_the_variable(tmp_path, monkeypatch):
    source, local = tmp_path / "shared", tmp_path / "data" / "models"
    source.mkdir()
    for name in ("scrfd_500m.onnx", "det_2.5g.onnx"):
        (source / name).write_bytes(name.encode())
    (source / "notes.txt").write_text("not a model")
    linked, kept = models.link(source, local)
    assert sorted(p.name for p in linked) == ["det_2.5g.onnx", "scrfd_500m.onnx"] and kept == []
    assert all(p.is_symlink() and p.resolve().parent == source.resolve() for p in linked)
    monkeypatch.delenv(models.ENV, raising=False)
    monkeypatch.setattr(models, "LOCAL_DIR", local)
    assert models.resolve(None) == local / "det_2.5g.onnx"
    # again: old links are replaced, a user's own file of the same name is kept
    (local / "scrfd_500m.onnx").unlink()
    (local / "scrfd_500m.onnx").write_bytes(b"mine")
    linked, kept = models.link(source, local)
    assert [p.name for p in linked] == ["det_2.5g.onnx"] and [p.name for p in kept] == ["scrfd_500m.onnx"]
    assert (local / "scrfd_500m.onnx").read_bytes() == b"mine"
    assert sorted(p.name for p in local.iterdir()) == ["det_2.5g.onnx", "scrfd_500m.onnx"]


def test_a_broken_link_is_no_model_and_is_named(tmp_path, monkeypatch):
    (tmp_path / "gone.onnx").symlink_to(tmp_path / "moved-away.onnx")
    monkeypatch.setenv(models.ENV, str(tmp_path))
    assert models.onnx_in(tmp_path) == []
    with pytest.raises(UserError, match=r"broken links: gone\.onnx"):
        models.available()


def test_models_link_from_the_cli(tmp_path, monkeypatch, capsys):
    from helpers.cli import main

    source = tmp_path / "shared"
    source.mkdir()
    (source / "scrfd_2.5g.onnx").write_bytes(b"x")
    monkeypatch.setattr(models, "LOCAL_DIR", tmp_path / "local")
    assert main(["models", "link", str(source)]) == 0
    assert (tmp_path / "local" / "scrfd_2.5g.onnx").is_symlink()
    assert "without SCRFD_MODEL_DIR" in capsys.readouterr().out
    assert main(["models", "link", str(tmp_path / "empty")]) == 2
    assert capsys.readouterr().err.startswith(f"error: {tmp_path / 'empty'} is not a folder")
