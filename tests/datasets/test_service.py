"""The dataset API other areas use: records, loading, preview, field configuration, export, removal, demo sets."""

from __future__ import annotations

import pandas as pd
import pytest

from platform_core.datasets.service import (
    add_dataset,
    dataset_path,
    export_cleaned,
    get_dataset,
    list_datasets,
    load_records,
    preview,
    record_detail,
    register_demo_datasets,
    remove_dataset,
    resolve_dataset,
    update_field_config,
)
from platform_core.errors import InvalidInput, NotFound
from platform_core.workspace.demo import write_datasets

ROWS = [
    {"prompt": f"第{i}题：{i} 加 {i} 等于多少？", "response": str(2 * i), "category": "加法" if i % 2 else "double"}
    for i in range(25)
]
ROWS += [{"prompt": ROWS[0]["prompt"], "response": "0"}, {"prompt": "无答案", "response": None}]


@pytest.fixture
def dataset_id(platform, write):
    return add_dataset(platform, write.jsonl("qa.jsonl", ROWS), "sft", "qa")["id"]


def test_records_load_as_frames_or_dicts_and_resolve_by_name(platform, dataset_id):
    frame = load_records(platform, "qa")
    assert (
        isinstance(frame, pd.DataFrame)
        and len(frame) == 27
        and list(frame.columns) == ["prompt", "response", "category"]
    )
    assert len(load_records(platform, dataset_id, valid_only=True)) == 26
    assert load_records(platform, dataset_id, as_frame=False)[3] == ROWS[3]
    assert resolve_dataset(platform, "qa")["id"] == get_dataset(platform, str(dataset_id))["id"] == dataset_id
    with pytest.raises(NotFound, match="'nope' does not exist"):
        get_dataset(platform, "nope")


def test_preview_pages_searches_chinese_text_and_shows_one_record(platform, dataset_id):
    page = preview(platform, dataset_id, page=1, page_size=10)
    assert page["total"] == 27 and page["pages"] == 3 and [r["_row"] for r in page["rows"]] == list(range(10, 20))
    found = preview(platform, dataset_id, search="加法")
    assert found["total"] == 12 and all(r["category"] == "加法" for r in found["rows"])
    assert preview(platform, dataset_id, search="第3题")["rows"][0]["_row"] == 3
    assert preview(platform, dataset_id, rows=[26, 25])["total"] == 2
    detail = record_detail(platform, dataset_id, 26)
    assert detail["place"] == "line 27" and detail["record"]["prompt"] == "无答案"
    assert detail["problems"] == [
        {"field": "response", "problem": "missing", "check": "empty", "message": "missing (no value, or null)"}
    ]
    with pytest.raises(InvalidInput):
        record_detail(platform, dataset_id, 27)


def test_field_configuration_is_checked_against_the_file(platform, dataset_id):
    config = update_field_config(platform, dataset_id, {"label_fields": ["category"]})
    assert config["label_fields"] == ["category"] and get_dataset(platform, dataset_id)["field_config"] == config
    with pytest.raises(InvalidInput, match="'answer' is not a field"):
        update_field_config(platform, dataset_id, {"label_fields": ["answer"]})
    with pytest.raises(InvalidInput, match="need the field 'question'.*was not changed"):
        update_field_config(platform, dataset_id, {"prompt_field": "question"})
    with pytest.raises(InvalidInput, match="unknown keys"):
        update_field_config(platform, dataset_id, {"colour": "red"})
    assert get_dataset(platform, dataset_id)["field_config"] == config


def test_export_drops_the_chosen_checks_as_a_new_version(platform, dataset_id):
    cleaned = export_cleaned(platform, dataset_id, ["empty"])
    assert cleaned["rows"] == 26 and cleaned["dropped_rows"] == [26] and cleaned["parent_id"] == dataset_id
    both = export_cleaned(platform, dataset_id, ["empty", "duplicate_exact"], name="qa-clean")
    assert both["rows"] == 25 and get_dataset(platform, "qa-clean")["parent_id"] == dataset_id
    assert get_dataset(platform, "qa")["id"] == cleaned["id"]  # the same name: the newest version
    with pytest.raises(InvalidInput, match="unknown"):
        export_cleaned(platform, dataset_id, ["spelling"])


def test_removal_keeps_a_file_another_record_shares(platform, write):
    path = write.jsonl("shared.jsonl", ROWS[:5])
    as_sft = add_dataset(platform, path, "sft", "shared")
    as_other_config = add_dataset(platform, path, "sft", "shared labels", field_config={"label_fields": []})
    assert as_other_config["id"] != as_sft["id"] and not as_other_config["existing"]
    record = get_dataset(platform, as_sft["id"])
    assert remove_dataset(platform, as_sft["id"])["file_removed"] is False
    assert dataset_path(platform, record).is_file()
    assert remove_dataset(platform, as_other_config["id"])["file_removed"] is True
    assert not dataset_path(platform, record).exists() and list_datasets(platform) == []


def test_demo_datasets_register_once(platform, tmp_path):
    files = write_datasets(tmp_path / "demo")
    ids = register_demo_datasets(platform, files)
    assert set(ids) == set(files) >= {"sft", "grpo", "ppo", "dpo", "eval"}
    assert register_demo_datasets(platform, files) == ids and len(list_datasets(platform)) == len(files)
    assert get_dataset(platform, "demo-grpo")["field_config"]["answer_field"] == "solution"
    assert get_dataset(platform, "demo-eval")["field_config"]["label_fields"] == ["category"]


def test_a_name_must_be_safe(platform, write):
    with pytest.raises(InvalidInput, match="dataset name"):
        add_dataset(platform, write.jsonl("x.jsonl", ROWS), "sft", "../etc; rm -rf")
    with pytest.raises(InvalidInput, match="dataset type"):
        add_dataset(platform, write.jsonl("x.jsonl", ROWS), "rlhf", "x")


def test_a_cleaned_export_keeps_the_source_values(platform, write):
    import json

    rows = [
        {"prompt": "p0", "response": "r0", "when": "2024-01-02T03:04:05", "score": 1.5},
        {"prompt": "p1", "response": 42, "when": "2024-01-03", "score": 2},  # wrong type: null in the loaded table
        {"prompt": "p0", "response": "again", "when": "x", "score": 3},  # duplicate prompt of row 0
        {"prompt": "p3", "response": "r3", "extra": {"nested": [1, None, "two"]}},
    ]
    source = write.jsonl("values.jsonl", rows)
    dataset_id = add_dataset(platform, source, "sft", "values")["id"]
    cleaned = export_cleaned(platform, dataset_id, ["duplicate_exact"])
    assert cleaned["dropped_rows"] == [2] and cleaned["rows"] == 3
    text = dataset_path(platform, get_dataset(platform, cleaned["id"])).read_text(encoding="utf-8")
    assert [json.loads(line) for line in text.splitlines()] == [rows[0], rows[1], rows[3]]
    assert text.splitlines() == [source.read_text().splitlines()[i] for i in (0, 1, 3)]  # the source lines themselves
    # a JSON array source: its elements, values kept, as JSON Lines
    from_array = add_dataset(platform, write.json("values.json", rows), "sft", "values-array")["id"]
    cleaned = export_cleaned(platform, from_array, ["duplicate_exact"])
    record = get_dataset(platform, cleaned["id"])
    assert record["format"] == "jsonl"
    assert [json.loads(x) for x in dataset_path(platform, record).read_text().splitlines()] == [
        rows[i] for i in (0, 1, 3)
    ]
    # Parquet: the source table's rows
    parquet_rows = [{"prompt": r["prompt"], "response": str(r["response"]), "n": i} for i, r in enumerate(rows)]
    from_parquet = add_dataset(platform, write.parquet("values.parquet", parquet_rows), "sft", "values-pq")["id"]
    cleaned = export_cleaned(platform, from_parquet, ["duplicate_exact"])
    assert load_records(platform, cleaned["id"], as_frame=False) == [parquet_rows[i] for i in (0, 1, 3)]


def test_label_fields_do_not_change_the_converted_file_name(platform, dataset_id):
    from platform_core.datasets.service import convert_for, converted_name

    record = get_dataset(platform, dataset_id)
    before = converted_name(record, "verl_sft")
    path = convert_for(platform, dataset_id)
    assert path.name == before
    assert record["field_config"]["label_fields"] == ["category"]
    update_field_config(platform, dataset_id, {"label_fields": []})
    record = get_dataset(platform, dataset_id)
    assert record["field_config"]["label_fields"] == []
    assert converted_name(record, "verl_sft") == before and convert_for(platform, dataset_id) == path
    # another area's key in the configuration does not change it either
    assert (
        converted_name({**record, "field_config": {**record["field_config"], "eval_type": "x"}}, "verl_sft") == before
    )
    update_field_config(platform, dataset_id, {"response_field": "category"})  # a mapping field: another file
    remapped = convert_for(platform, dataset_id)
    assert remapped.name == converted_name(get_dataset(platform, dataset_id), "verl_sft") != before
    assert remapped != path and path.is_file()
