"""The platform's reward functions (platform_core/plugins/reward.py) and the reward dry run: real calls, values."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from platform_core.datasets.service import add_dataset, convert_for, update_field_config
from platform_core.errors import InvalidInput
from platform_core.jobs.dryrun import dry_run
from platform_core.plugins import reward as R


# -- extraction ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("so \\boxed{42}.", "42"),
        ("first \\boxed{1} then \\boxed{ 7 }", "7"),  # the last box, trimmed
        ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),  # nested braces
        ("no box here: 42", None),
        ("\\boxed{unclosed", None),
    ],
)
def test_boxed_extraction(text, expected):
    assert R.extract_boxed(text) == expected
    assert R.extract_answer(text, "boxed") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3 apples and 5 pears make 8", "8"),
        ("total: 1,234 dollars", "1,234"),
        ("a ratio of 3/4", "3/4"),
        ("it dropped by -2.5 today", "-2.5"),
        ("about 50% of them", "50%"),
        ("答案是１２", "12"),  # full-width digits
        ("no digits", None),
    ],
)
def test_last_number_extraction(text, expected):
    assert R.extract_answer(text, "last_number") == expected


def test_json_extraction():
    assert R.extract_answer('think... {"answer": 12} and then {"answer": "13"}', "json") == "13"
    assert R.extract_answer('{"result": 5} {"other": 1}', "json", json_key="result") == "5"
    assert R.extract_answer('{"answer": 3, broken', "json") is None
    assert R.extract_answer('{"x": 1}', "json") is None
    with pytest.raises(ValueError, match="unknown extraction"):
        R.extract_answer("x", "regex")


# -- comparison ------------------------------------------------------------------------------------------------------
def test_exact_numeric_and_fuzzy_comparison():
    assert R.compare("Paris", " paris. ", "exact") == 1.0  # case, spaces, trailing punctuation
    assert R.compare("Ｐａｒｉｓ", "paris", "exact") == 1.0  # full-width
    assert R.compare("Paris", "London", "exact") == 0.0
    assert R.compare("1,000", "1000", "numeric") == 1.0
    assert R.compare("0.75", "3/4", "numeric") == 1.0
    assert R.compare("50%", "0.5", "numeric") == 1.0
    assert R.compare("3.0000000001", "3", "numeric") == 1.0
    assert R.compare("3.1", "3", "numeric") == 0.0
    assert R.compare("abc", "ABC", "numeric") == 1.0  # not numbers: falls back to exact text
    assert R.compare("kitten", "kitten", "fuzzy") == 1.0
    assert R.compare("kitten", "sitting", "fuzzy") == pytest.approx(8 / 13)
    assert R.compare("abc", "xyz", "fuzzy") == 0.0
    with pytest.raises(ValueError, match="unknown comparison"):
        R.compare("a", "b", "semantic")


def test_math_verify_scores_equivalent_forms():
    assert R.math_verify_equal("\\frac{1}{2}", "0.5") is True
    assert R.math_verify_equal("2", "3") is False
    boxed = R.score_details("The answer is \\boxed{\\frac{6}{12}}", "1/2")
    assert boxed == {"score": 1.0, "acc": 1.0, "format_ok": 1.0, "extracted": "\\frac{6}{12}"}
    wrong = R.score_details("The answer is \\boxed{3}", "4")
    assert wrong["score"] == 0.0 and wrong["format_ok"] == 1.0
    missing = R.score_details("I do not know", "4")
    assert missing == {"score": 0.0, "acc": 0.0, "format_ok": 0.0, "extracted": None}
    # A text answer math-verify cannot parse still scores through the chosen comparison.
    assert R.score_details('{"answer": "Paris"}', "paris", extraction="json", comparison="exact")["score"] == 1.0
    # verl's entry point: numbers only.
    assert R.compute_score("math", "so 12", "12", None, extraction="last_number") == {
        "score": 1.0,
        "acc": 1.0,
        "format_ok": 1.0,
    }


def test_format_check_rewards_the_form_only():
    assert R.score_details("\\boxed{wrong}", "42", reward_type="format_check")["score"] == 1.0
    assert R.score_details("no box", "42", reward_type="format_check")["score"] == 0.0
    with pytest.raises(ValueError, match="unknown reward_type"):
        R.score_details("x", "1", reward_type="llm_judge")


def test_a_users_custom_compute_score_file(tmp_path):
    custom = tmp_path / "my_reward.py"
    custom.write_text(
        "def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs):\n"
        "    bonus = 0.5 if data_source == 'gsm8k' else 0.0\n"
        "    return {'score': (1.0 if solution_str.strip().endswith(str(ground_truth)) else 0.0) + bonus}\n"
    )
    hit = R.score_details("the answer is 7", "7", reward_type="custom", custom_path=str(custom), data_source="gsm8k")
    assert hit == {"score": 1.5, "acc": 1.5, "format_ok": 1.0, "extracted": None}
    assert R.compute_score("other", "the answer is 8", "7", None, reward_type="custom", custom_path=str(custom)) == {
        "score": 0.0,
        "acc": 0.0,
        "format_ok": 1.0,
    }
    plain = tmp_path / "plain.py"
    plain.write_text("def compute_score(data_source, solution_str, ground_truth, extra_info=None):\n    return 0.25\n")
    assert R.score_details("x", "y", reward_type="custom", custom_path=str(plain))["score"] == 0.25
    broken = tmp_path / "broken.py"
    broken.write_text("def score(x):\n    return 1\n")
    with pytest.raises(ValueError, match="defines no compute_score"):
        R.score_details("x", "y", reward_type="custom", custom_path=str(broken))
    with pytest.raises(ValueError, match="needs custom_path"):
        R.score_details("x", "y", reward_type="custom")


# -- dry run ---------------------------------------------------------------------------------------------------------
def test_dry_run_of_a_working_reward_has_no_warning(demo_platform):
    result = dry_run(demo_platform, "demo-grpo", {"extraction": "last_number", "comparison": "numeric"}, rows=6)
    assert len(result["rows"]) == 6 and result["warnings"] == []
    assert result["correct_rate"] == 1.0 and result["wrong_rate"] == 0.0
    row = result["rows"][0]
    assert row["correct_extracted"] == row["reference"] and row["correct_score"] == 1.0
    assert row["wrong_extracted"] != row["reference"] and row["wrong_score"] == 0.0


def test_dry_run_shows_a_reward_that_never_fires(demo_platform, tmp_path):
    never = tmp_path / "never.py"
    never.write_text(
        "def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kw):\n    return 0\n"
    )
    result = dry_run(demo_platform, "demo-grpo", {"reward_type": "custom", "custom_path": str(never)}, rows=4)
    assert result["warnings"] == ["never_fires"] and result["correct_rate"] == 0.0


def test_dry_run_shows_a_reward_that_always_fires(demo_platform):
    # format_check pays for the \boxed{} form whatever is inside it: wrong answers score too.
    result = dry_run(demo_platform, "demo-grpo", {"reward_type": "format_check", "extraction": "boxed"}, rows=5)
    assert result["warnings"] == ["always_fires"] and result["wrong_rate"] == 1.0
    assert all(r["wrong_extracted"] is not None for r in result["rows"])
    fuzzy = dry_run(demo_platform, "demo-grpo", {"extraction": "boxed", "comparison": "fuzzy"}, rows=5)
    assert "never_fires" not in fuzzy["warnings"]


def _trained_answers(platform, dataset_id) -> dict[int, dict[str, str]]:
    """What training reads, by original row: verl's reward_model.ground_truth and TRL's solution column."""
    verl = pq.read_table(convert_for(platform, dataset_id, "verl_rl")).to_pylist()
    trl = pq.read_table(convert_for(platform, dataset_id, "trl_rl")).to_pylist()
    return {
        v["extra_info"]["index"]: {"verl": v["reward_model"]["ground_truth"], "trl": t["solution"]}
        for v, t in zip(verl, trl, strict=True)
    }


def test_dry_run_scores_the_answer_column_training_reads(platform, tmp_path):
    # The answer lives in `gold`; a `solution` column holding other values must not be what gets scored.
    rows = [{"question": f"{i} * 3 = ?", "gold": i * 3, "solution": 1000 + i, "src": "mul"} for i in range(6)]
    path = tmp_path / "mul.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    config = {"prompt_field": "question", "answer_field": "gold", "data_source_field": "src"}
    dataset_id = add_dataset(platform, path, "grpo", "mul", field_config=config)["id"]

    result = dry_run(platform, dataset_id, {"extraction": "last_number"}, rows=6)
    trained = _trained_answers(platform, dataset_id)
    assert {r["row"]: r["reference"] for r in result["rows"]} == {i: str(i * 3) for i in range(6)}
    for r in result["rows"]:
        assert trained[r["row"]] == {"verl": r["reference"], "trl": r["reference"]}
        assert r["prompt"] == rows[r["row"]]["question"]
    assert result["correct_rate"] == 1.0 and result["warnings"] == []

    # Editing the dataset's answer field changes what training and the dry run read, together.
    update_field_config(platform, dataset_id, {"answer_field": "solution"})
    moved = dry_run(platform, dataset_id, {"extraction": "last_number"}, rows=6)
    assert {r["row"]: r["reference"] for r in moved["rows"]} == {i: str(1000 + i) for i in range(6)}
    assert all(_trained_answers(platform, dataset_id)[r["row"]]["verl"] == r["reference"] for r in moved["rows"])


def test_dry_run_of_a_verl_format_dataset_reads_reward_model_ground_truth(platform, tmp_path):
    rows = [
        {
            "data_source": "openai/gsm8k",
            "prompt": [{"role": "user", "content": f"What is {i} + 1?"}],
            "ability": "math",
            "reward_model": {"style": "rule", "ground_truth": str(i + 1)},
            "extra_info": {"index": i},
        }
        for i in range(5)
    ]
    path = tmp_path / "gsm8k.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    dataset_id = add_dataset(platform, path, "grpo", "gsm8k")["id"]

    result = dry_run(platform, dataset_id, {"extraction": "boxed"}, rows=5)
    trained = _trained_answers(platform, dataset_id)
    assert [r["reference"] for r in result["rows"]] == ["1", "2", "3", "4", "5"]
    assert all(trained[r["row"]] == {"verl": r["reference"], "trl": r["reference"]} for r in result["rows"])
    assert result["rows"][2]["prompt"] == "What is 2 + 1?"  # the chat's last user message
    assert result["correct_rate"] == 1.0 and result["wrong_rate"] == 0.0


def test_dry_run_refuses_datasets_without_answers(demo_platform):
    with pytest.raises(InvalidInput, match="'demo-ppo' has no answer in any row"):
        dry_run(demo_platform, "demo-ppo", {})
    with pytest.raises(InvalidInput, match="'demo-sft' is a SFT dataset"):
        dry_run(demo_platform, "demo-sft", {})


def test_stored_specs_with_the_retired_answer_field_still_load():
    from platform_core.jobs.specs import GRPOSpec, RewardSpec

    assert "answer_field" not in RewardSpec.model_fields
    assert RewardSpec(answer_field="solution", extraction="last_number").extraction == "last_number"
    spec = GRPOSpec(name="old", algorithm="grpo", model="m", dataset="d", reward={"answer_field": "gold"})
    assert "answer_field" not in spec.model_dump()["reward"]
