"""Recorded GPU outputs shown in place of cells that cannot run: found by cell id, always labelled."""

from __future__ import annotations

import json

from helpers.recorded import recorded_outputs, script_run, show_recorded


def _recording(tmp_path, cells):
    nb = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "02_x.trtemu.ipynb").write_text(json.dumps(nb))


def _stream(text):
    return {"output_type": "stream", "name": "stdout", "text": [text]}


def test_a_cell_is_found_by_id_wherever_it_moved_and_named_with_its_machine(tmp_path, capsys):
    _recording(
        tmp_path,
        [
            {
                "id": "first",
                "cell_type": "code",
                "outputs": [_stream("TensorRT: trtemu 10.4 on NVIDIA H200 (sm 9.0)\n")],
            },
            {"id": "moved", "cell_type": "code", "outputs": [_stream("A = ort\nB = trt\n")]},
            {"id": "path", "cell_type": "code", "outputs": [_stream("built /w/main/data/engines/a.plan\n")]},
        ],
    )
    machine, outputs = recorded_outputs("02_x", "moved", tmp_path)
    assert machine == "NVIDIA H200" and outputs[0]["text"] == ["A = ort\nB = trt\n"]
    show_recorded("02_x", "moved", tmp_path)
    shown = capsys.readouterr().out
    assert shown.startswith("[recorded on NVIDIA H200 through trtemu (TensorRT API emulator), not TensorRT]")
    assert "B = trt" in shown
    show_recorded("02_x", "path", tmp_path)
    assert capsys.readouterr().out.endswith("built data/engines/a.plan\n")  # not the recording machine's


def test_a_missing_recording_or_cell_says_not_recorded_yet(tmp_path, capsys):
    show_recorded("02_x", "nowhere", tmp_path)
    _recording(tmp_path, [{"id": "other", "cell_type": "code", "outputs": []}])
    show_recorded("02_x", "other", tmp_path)
    out = capsys.readouterr().out
    assert out.count("Not recorded yet") == 2 and "recorded on" not in out


def test_the_script_run_report_names_its_machine_and_every_worker(tmp_path):
    assert script_run(tmp_path / "none.json").startswith("Not recorded yet")

    def side(faces, errors):
        workers = [{"worker": i, "frames": 3, "faces": faces, "errors": errors} for i in range(2)]
        return {
            "command": "python x",
            "returncode": 0,
            "workers": workers,
            "tensorrt_log": [],
            "stderr_tail": [],
        }

    report = {
        "label": "recorded on NVIDIA H200 through trtemu (TensorRT API emulator), not TensorRT",
        "model": "m.onnx",
        "image": "crowd48.png",
        "before": side(0, []),
        "after": side(48, []),
    }
    (tmp_path / "r.json").write_text(json.dumps(report))
    text = script_run(tmp_path / "r.json")
    assert text.splitlines()[0] == f"[{report['label']}]"
    assert text.count("0 faces in its last frame") == 2 and text.count("48 faces") == 2
