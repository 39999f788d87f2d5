"""Eval sets: JSON / JSONL / Parquet upload, row-level errors that name the file, line and field."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from platform_core.errors import InvalidInput
from platform_core.evaluation.datasets_adapter import (
    add_eval_dataset,
    add_eval_dataset_upload,
    get_eval_dataset,
    list_eval_datasets,
    load_eval_records,
)


def test_jsonl_json_and_parquet_are_stored_in_the_datasets_table(platform, tmp_path, helpers):
    rows = helpers.demo_eval_rows()
    jsonl = helpers.write_jsonl(tmp_path / "a.jsonl", rows)
    array = tmp_path / "b.json"
    array.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    parquet = tmp_path / "c.parquet"
    pd.DataFrame(rows).to_parquet(parquet)
    records = [
        add_eval_dataset(platform, jsonl, "set-a", "demo items", eval_type="qa"),
        add_eval_dataset(platform, array, "set-b"),
        add_eval_dataset(platform, parquet, "set-c", eval_type="general"),
    ]
    assert [r["format"] for r in records] == ["jsonl", "json", "parquet"]
    assert all(r["type"] == "eval" and r["rows"] == len(rows) for r in records)
    assert records[0]["field_config"]["eval_type"] == "qa"
    assert records[0]["field_config"]["categories"] == ["addition", "general", "subtraction"]
    assert records[1]["field_config"]["eval_type"] == "general"
    assert records[0]["description"] == "demo items"
    for record in records:
        assert load_eval_records(platform, record["id"]) == [
            {"prompt": r["prompt"], "reference": r["reference"], "category": r["category"]} for r in rows
        ]
    assert [r["name"] for r in list_eval_datasets(platform)] == ["set-c", "set-b", "set-a"]
    assert get_eval_dataset(platform, "set-a")["id"] == records[0]["id"]
    assert add_eval_dataset(platform, jsonl, "set-a", eval_type="qa")["id"] == records[0]["id"]  # stored once


def test_row_errors_name_the_file_line_and_field(platform, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(
        '{"prompt": "ok", "reference": "1"}\n'
        '{"prompt": "", "reference": "2"}\n'
        "\n"
        '{"prompt": "q", "category": 3}\n'
        '["not", "an", "object"]\n',
        encoding="utf-8",
    )
    with pytest.raises(InvalidInput) as info:
        add_eval_dataset(platform, path, "bad")
    message = str(info.value)
    assert message.startswith("bad.jsonl: 3 problem(s)")
    assert "line 2: field 'prompt' must be a non-empty string" in message
    assert "line 4: field 'reference' must be a non-empty string (missing)" in message
    assert "line 5: expected an object" in message
    assert not list_eval_datasets(platform)


def test_invalid_json_and_types_are_reported(platform, tmp_path):
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"prompt": "a", "reference": "b"}\n{"prompt": \n', encoding="utf-8")
    with pytest.raises(InvalidInput, match="broken.jsonl line 2: invalid JSON"):
        add_eval_dataset(platform, broken, "x")
    array = tmp_path / "items.json"
    array.write_text(json.dumps([{"prompt": "a", "reference": ["b"]}]), encoding="utf-8")
    with pytest.raises(InvalidInput, match="item 1: field 'reference'"):
        add_eval_dataset(platform, array, "x")
    with pytest.raises(InvalidInput, match="unsupported file type"):
        add_eval_dataset(platform, tmp_path / "x.csv", "x")
    with pytest.raises(InvalidInput, match="evaluation type"):
        add_eval_dataset(platform, array, "x", eval_type="poetry")


def test_eval_type_specific_checks(platform, tmp_path, helpers):
    write_jsonl = helpers.write_jsonl
    mc = write_jsonl(
        tmp_path / "mc.jsonl", [{"prompt": "Q\nA. x\nB. y", "reference": "B"}, {"prompt": "Q", "reference": "Paris"}]
    )
    with pytest.raises(InvalidInput, match="line 2: field 'reference' must be an option letter"):
        add_eval_dataset(platform, mc, "mc", eval_type="multiple_choice")
    code = write_jsonl(tmp_path / "code.jsonl", [{"prompt": "write f", "reference": "def f(): ..."}])
    with pytest.raises(InvalidInput, match="field 'tests' is required"):
        add_eval_dataset(platform, code, "code", eval_type="code")
    numbers = write_jsonl(tmp_path / "n.jsonl", [{"prompt": "1+1", "reference": 2}])
    record = add_eval_dataset(platform, numbers, "numbers")
    assert load_eval_records(platform, record["id"])[0]["reference"] == "2"


def test_upload_keeps_the_original_file_name(platform, helpers):
    rows = helpers.demo_eval_rows(1)
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    record = add_eval_dataset_upload(platform, "my set.jsonl", data, "uploaded", eval_type="qa")
    assert record["original_name"] == "my set.jsonl" and record["rows"] == 3
    with pytest.raises(InvalidInput, match=r"^bad\.jsonl: 1 problem"):
        add_eval_dataset_upload(platform, "bad.jsonl", b'{"prompt": "x"}\n', "bad")
    assert not list((platform.workspace.cache / "uploads").iterdir())
