"""The Datasets page under AppTest: the list (200 datasets, SSH sync column) and the detail view of a real dataset."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from platform_core.datasets.service import add_dataset

REPO = Path(__file__).resolve().parents[2]
ROWS = [
    {"prompt": f"What is {i} + {i}?", "response": str(2 * i), "category": ["add", "double"][i % 2]} for i in range(40)
]
ROWS += [
    {"prompt": "What is 1 + 1?", "response": "2", "category": "add"},
    {"prompt": " ", "response": "x", "category": "add"},
]


def _page(lang: str, dataset: int | None = None) -> AppTest:
    at = AppTest.from_file(str(REPO / "app" / "main.py"), default_timeout=120)
    at.session_state["lang"] = lang
    at.run()
    if dataset is not None:
        at.query_params["dataset"] = str(dataset)
    at.switch_page("../pages/datasets.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_detail_view_shows_a_real_dataset(platform, write, demo_model_dir, lang):
    from platform_core.models import register_model

    register_model(platform, demo_model_dir, name="demo-tokenizer")
    dataset_id = add_dataset(platform, write.jsonl("page.jsonl", ROWS), "sft", "page set")["id"]
    at = _page(lang, dataset_id)
    assert at.title[0].value == "page set"
    labels = [tab.label for tab in at.tabs]
    assert len(labels) == 7 and labels[0] == ("概览与分布" if lang == "zh" else "Overview")
    metrics = {m.label: m.value for m in at.metric}
    rows_label, empty_label = ("行数", "空值") if lang == "zh" else ("Rows", "Empty / null")
    assert metrics[rows_label] == "42" and metrics[empty_label] == "1"
    tokenizer = next(s for s in at.selectbox if s.key == "ds_tokenizer")
    tokenizer.set_value(str(demo_model_dir.resolve()))
    at.number_input(key="ds_max_length").set_value(4)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    texts = " ".join(w.value for w in at.warning) + " ".join(s.value for s in at.success)
    assert "prompt" in texts and ("4 token" in texts or "4 tokens" in texts)
    at.text_input(key="ds_search").set_value("double")
    at.run()
    assert not at.exception
    assert any(("20" in c.value) for c in at.caption)
    record = next(s for s in at.selectbox if s.key == "ds_record")
    record.set_value(1)
    at.run()
    assert any(c.value == "2" for c in at.code)  # the response of row 1, shown in full


def test_the_detail_view_converts_exports_and_saves_the_field_configuration(platform, write):
    from platform_core.datasets.service import get_dataset, list_datasets

    dataset_id = add_dataset(platform, write.jsonl("page.jsonl", ROWS), "sft", "page set")["id"]
    at = _page("en", dataset_id)
    at.button(key="ds_convert_verl_sft").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("verl_sft" in c.value and "41 rows" in c.value for c in at.caption), [c.value for c in at.caption]
    next(b for b in at.button if b.label == "Export as a new version").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("40 rows (2 dropped)" in s.value for s in at.success), [s.value for s in at.success]
    newest = list_datasets(platform)[0]
    assert newest["parent_id"] == dataset_id and newest["rows"] == 40  # a blank prompt and a duplicate dropped
    at.multiselect[-1].set_value(["category"])
    next(b for b in at.button if b.label == "Save").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert get_dataset(platform, dataset_id)["field_config"]["label_fields"] == ["category"]


def test_a_missing_dataset_says_so(platform):
    at = _page("en", 999)
    assert any("999" in e.value for e in at.error)


def test_the_list_renders_200_datasets_quickly_with_sync_status(platform, write):
    from platform_core import settings
    from platform_core.connections import add_connection

    for i in range(200):
        add_dataset(
            platform,
            write.raw(f"d{i}.jsonl", json.dumps({"prompt": f"q{i}", "response": "a"}).encode()),
            "sft",
            f"set {i}",
        )
    add_connection(platform, "gpu", "gpu.example.com", "root", password="not-used-here")
    settings.set_run_target(platform, "ssh:gpu")
    started = time.monotonic()
    at = _page("en")
    elapsed = time.monotonic() - started
    frame = at.dataframe[0].value
    assert len(frame) == 200 and set(frame["Sync"]) == {"not synced"}
    assert elapsed < 20, elapsed  # generous: the shared CI machine; typically well under 5 s
