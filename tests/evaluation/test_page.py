"""The evaluation page under AppTest with finished runs: list, run detail (?run=ID) with baseline, samples and
errors, and the comparison of two runs, in Chinese and English."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def finished_runs(platform, eval_set, demo_model_dir, helpers):
    from platform_core.evaluation.datasets_adapter import load_eval_records

    refs = {i: r["reference"] for i, r in enumerate(load_eval_records(platform, eval_set))}
    half = {i: (ref if i % 2 == 0 else "wrong") for i, ref in refs.items()}
    good = helpers.scored_run(platform, eval_set, demo_model_dir, "good", refs)
    mixed = helpers.scored_run(platform, eval_set, demo_model_dir, "mixed", half)
    return good, mixed


def open_page(lang: str, run_id: int | None = None) -> AppTest:
    at = AppTest.from_file(str(REPO / "app" / "main.py"), default_timeout=120)
    at.session_state["lang"] = lang
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    if run_id is not None:
        at.query_params["run"] = str(run_id)
    at.switch_page("../pages/evaluation.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_lists_and_forms_render(finished_runs, lang):
    at = open_page(lang)
    assert at.title[0].value == ("评估中心" if lang == "zh" else "Evaluation center")
    assert len(at.tabs) == 4
    frames = [df.value for df in at.dataframe]
    assert any("demo-eval" in frame.to_string() for frame in frames)  # the eval set list
    assert any("mixed" in frame.to_string() for frame in frames)  # the run list


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_run_detail_with_baseline_samples_and_errors(finished_runs, lang):
    good, mixed = finished_runs
    at = open_page(lang, mixed)
    headers = [h.value for h in at.header]
    assert f"#{mixed} mixed" in headers
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["accuracy"] == "0.500"
    baseline = next(s for s in at.selectbox if s.key == f"baseline_{mixed}")
    baseline.set_value(good).run()
    assert not at.exception, [e.value for e in at.exception]
    tables = [df.value.to_string() for df in at.dataframe]
    significant = "不显著" if lang == "zh" else "not significant"
    assert any("mcnemar" in t.lower() or "McNemar" in t for t in tables)
    assert any(significant in t for t in tables)  # 3 of 6 flipped: not significant at n = 6
    expanders = [e.label for e in at.expander]
    assert any(("general" in label) for label in expanders)  # wrong answers grouped by category


def test_comparison_of_two_runs(finished_runs):
    good, mixed = finished_runs
    at = open_page("en")
    picker = next(m for m in at.multiselect if m.key == "cmp_runs")
    picker.set_value([good, mixed]).run()
    assert not at.exception, [e.value for e in at.exception]
    subheaders = [s.value for s in at.subheader]
    assert any(s.startswith("Items where the models disagree on accuracy: 3") for s in subheaders)
