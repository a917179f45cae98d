"""Markdown tables rendered from the workbook's data (pure, CPU)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from helpers.cuda.explain import EXPLANATIONS, Explanation
from helpers.tables import (
    cell,
    dataclass_table,
    explain_table,
    layer_rows,
    layer_table,
    mapping_table,
    markdown_table,
)


@dataclass(frozen=True)
class Row:
    name: str
    size: int


def test_cells_escape_pipes_and_line_breaks_round_floats_and_show_none_as_a_dash():
    assert cell("a|b\nc") == "a\\|b<br>c"
    assert cell(None) == "–"
    assert cell(3) == "3"
    assert cell(110.73240832507433) == "111"
    assert cell(8.106231689453125e-06) == "8.11e-06"


def test_markdown_table_has_header_separator_and_one_line_per_row():
    text = markdown_table(("a", "b"), [(1, 2), ("x", None)])
    assert text.splitlines() == ["| a | b |", "| --- | --- |", "| 1 | 2 |", "| x | – |"]


def test_markdown_table_refuses_a_row_of_the_wrong_width():
    with pytest.raises(ValueError, match="2 values for 3 columns"):
        markdown_table(("a", "b", "c"), [(1, 2)])


def test_dataclass_table_uses_fields_or_the_columns_asked_for():
    rows = [Row("score_8", 12800), Row("bbox_8", 12800)]
    assert dataclass_table(rows).splitlines()[0] == "| name | size |"
    assert dataclass_table(rows, ["size"]).splitlines()[2] == "| 12800 |"
    assert dataclass_table([]) == "_(none)_"
    with pytest.raises(TypeError):
        dataclass_table([Row])


def test_mapping_table_writes_nested_values_as_json():
    text = mapping_table({"precision": "fp16", "profile": {"min": [1, 3, 128, 128]}})
    assert '| profile | {"min": [1, 3, 128, 128]} |' in text


def test_explain_table_has_one_row_per_explanation_with_relative_links():
    text = explain_table(EXPLANATIONS)
    lines = text.splitlines()
    assert len(lines) == 2 + len(EXPLANATIONS)
    assert "[03_cuda_context_setup](03_cuda_context_setup.ipynb)" in lines[2]
    assert all(f"`{e.patterns[0]}`" in text for e in EXPLANATIONS)


def test_explain_table_lists_the_other_patterns_and_escapes_pipes():
    row = Explanation(("first", "a|b"), "cause", "fix", "notebooks/08_troubleshooting.ipynb")
    body = explain_table([row]).splitlines()[2]
    assert "`first`<br>also: `a\\|b`" in body
    assert body.endswith("[08_troubleshooting](08_troubleshooting.ipynb) |")


def test_layer_rows_read_detailed_and_names_only_reports():
    detailed = {"Layers": [{"Name": "conv1", "LayerType": "CaskConvolution", "TacticName": "sm90_xmma"}]}
    assert layer_rows(json.dumps(detailed)) == [["conv1", "CaskConvolution", "sm90_xmma"]]
    names_only = {"Layers": ["conv1 + relu1"], "Bindings": ["input.1"]}
    assert layer_rows(json.dumps(names_only)) == [["conv1 + relu1", "–", "–"]]
    assert layer_rows(json.dumps({"Layers": [{"Name": "x"}]})) == [["x", "–", "–"]]


def test_layer_rows_refuse_other_json_with_a_reason():
    with pytest.raises(ValueError, match="no 'Layers' list"):
        layer_rows(json.dumps({"error": "engine did not deserialize"}))
    with pytest.raises(ValueError, match="not an engine inspector JSON"):
        layer_rows("not json")


def test_layer_table_counts_every_layer_and_truncates():
    report = json.dumps({"Layers": [f"layer{i}" for i in range(30)]})
    text = layer_table(report, limit=10)
    assert text.startswith("30 layers")
    assert "layer9" in text and "layer10 " not in text
    assert "_20 more layers not shown._" in text
