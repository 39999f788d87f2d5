"""The platform's reward functions (platform_core/plugins/reward.py) and the reward dry run: real calls, values."""

from __future__ import annotations

import pytest

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


def test_dry_run_names_a_missing_answer_field(demo_platform):
    with pytest.raises(InvalidInput, match="no column 'answer'"):
        dry_run(demo_platform, "demo-grpo", {"answer_field": "answer"})
