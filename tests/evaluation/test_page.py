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
    metric = next(s for s in at.selectbox if s.key == "cmp_disagree_metric")
    assert metric.value == "accuracy" and {"exact_match", "bleu", "rougeL"} <= set(metric.options)
    metric.set_value("rougeL").run()  # a graded metric: the same three items differ
    assert not at.exception, [e.value for e in at.exception]
    subheaders = [s.value for s in at.subheader]
    assert any(s.startswith("Items where the models disagree on rougeL: 3") for s in subheaders), subheaders
    table = at.dataframe[-1].value
    assert any(column.endswith("· rougeL") for column in table.columns)


def test_several_samples_per_question_are_all_shown(platform, eval_set, demo_model_dir, helpers):
    from platform_core.evaluation.runs import create_run, execute_run, output_dir

    run_id = create_run(platform, "multi", str(demo_model_dir), eval_set, ["accuracy"], {"samples": 2})
    rows = [{"id": i, "predictions": [f"first-{i}", f"second-{i}"]} for i in range(6)]
    helpers.write_jsonl(output_dir(platform, run_id) / "generations.jsonl", rows)
    execute_run(platform, run_id)
    at = open_page("en", run_id)
    samples = at.dataframe[next(n for n, df in enumerate(at.dataframe) if "first-0" in df.value.to_string())].value
    assert list(samples["Model answer"][:2]) == ["[1] first-0 | [2] second-0", "[1] first-1 | [2] second-1"]


def test_the_search_box_filters_the_wrong_answers_too(finished_runs):
    good, mixed = finished_runs
    at = open_page("en", mixed)
    groups = [e.label for e in at.expander if e.label.endswith(" wrong")]
    assert sorted(groups) == ["addition: 1 wrong", "general: 1 wrong", "subtraction: 1 wrong"]
    search = next(s for s in at.text_input if s.key == f"sample_search_{mixed}")
    search.set_value("如何").run()  # the prompt of item 5, a general question the run got wrong
    assert not at.exception, [e.value for e in at.exception]
    assert [e.label for e in at.expander if e.label.endswith(" wrong")] == ["general: 1 wrong"]
    search.set_value("7-4").run()  # item 2, answered right: nothing wrong is left
    assert not at.exception, [e.value for e in at.exception]
    assert [e.label for e in at.expander if e.label.endswith(" wrong")] == []
    assert any(s.value == "No wrong answers." for s in at.success)


def test_the_new_run_form_sets_the_sandbox_limits(platform, eval_set, demo_model_dir):
    """The code sandbox's limits are run options on the page too (the CLI has --code-timeout/--code-memory)."""
    from platform_core.evaluation.runs import get_run, stop_run

    at = open_page("en")
    at.text_input(key="new_name").set_value("limits")
    at.text_input(key="new_path").set_value(str(demo_model_dir))
    at.number_input(key="new_code_timeout").set_value(2.0)
    at.number_input(key="new_code_memory").set_value(512)
    at.number_input(key="new_max").set_value(2)
    next(b for b in at.button if b.label == "Start the run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    run_id = int(at.query_params["run"][0] if isinstance(at.query_params["run"], list) else at.query_params["run"])
    run = get_run(platform, run_id)
    stop_run(platform, run_id)
    assert run["gen_params"]["code_timeout_s"] == 2.0 and run["gen_params"]["code_memory_mb"] == 512
