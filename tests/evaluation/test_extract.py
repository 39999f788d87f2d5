"""Answer extraction and normalisation: choice letters, numbers, code blocks, exact match, the ROUGE tokenizer."""

from __future__ import annotations

import pytest
from rouge_score import tokenizers

from platform_core.evaluation.extract import (
    CJKTokenizer,
    choice_letters,
    exact_match,
    extract_choice,
    extract_code,
    extract_number,
    normalize_answer,
    normalize_zh_answer,
    parse_number,
    reference_choice,
    strip_reasoning,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The answer is (B).", "B"),
        ("$\\boxed{B}$", "B"),
        ("\\boxed{\\text{C}}", "C"),
        ("答案是C", "C"),
        ("答案为（B）", "B"),
        ("选项：D", "D"),
        ("Answer: c", "C"),
        ("I think the answer is b.", "B"),
        ("The answer is a dog", None),  # lower-case 'a' followed by a word is not option A
        ("The answer is Bob", None),
        ("Let me think.\nD\n", "D"),
        ("Either (A) or (C)", "C"),  # the last match of the first pattern that hits
        ("A is wrong, B is wrong, so C", "C"),
        ("Between A and B: the answer is A.", "A"),  # the anchor beats the later bare letter
        ("no letter here", None),
        ("<think>maybe A</think>The answer is B", "B"),
    ],
)
def test_choice_cascade(text, expected):
    assert extract_choice(text, "ABCD") == expected


def test_choice_letters_come_from_the_prompt_and_reference():
    assert choice_letters("Q?\nA. x\nB. y") == "ABCD"
    assert choice_letters("Q?\nA. x\nB. y\nC. z\nD. w\nE. v\nF. u") == "ABCDEF"
    assert choice_letters("", "G") == "ABCDEFG"
    assert extract_choice("The answer is F", "ABCD") is None
    assert extract_choice("The answer is F", "ABCDEF") == "F"


@pytest.mark.parametrize(
    ("reference", "letter"),
    [("B", "B"), ("(B)", "B"), ("b.", "B"), ("B. Paris", "B"), ("（C）巴黎", "C"), ("A dog", None), ("Paris", None)],
)
def test_reference_choice(reference, letter):
    assert reference_choice(reference) == letter


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("3 + 4 = 7", 7.0),
        ("The answer is 12, not 13", 12.0),
        ("\\boxed{\\frac{3}{4}} and 9", 0.75),
        ("1,234 apples", 1234.0),
        ("5-8=-3", -3.0),
        ("答案是：７", 7.0),
        ("3/4", 0.75),
        ("nothing", None),
    ],
)
def test_extract_number(text, value):
    assert extract_number(text) == value


@pytest.mark.parametrize(
    ("reference", "value"), [("7", 7.0), ("-2.5", -2.5), ("1,234", 1234.0), ("3/4", 0.75), ("7 apples", None)]
)
def test_parse_number(reference, value):
    assert parse_number(reference) == value


def test_squad_normalisation():
    assert normalize_answer("The  Cat!") == "cat"
    assert normalize_answer("An apple, a day.") == "apple day"
    assert exact_match("  the Eiffel tower. ", "Eiffel Tower")
    assert not exact_match("Eiffel", "Eiffel Tower")


def test_chinese_normalisation_drops_chinese_punctuation_and_all_spaces():
    assert normalize_zh_answer("答案：北京。 Yes") == "答案北京yes"
    assert exact_match("北 京！", "北京")
    assert exact_match("“机器学习”。", "机器学习")
    assert not exact_match("上海", "北京")


def test_cjk_tokenizer_keeps_chinese_and_matches_rouge_default_on_ascii():
    assert CJKTokenizer().tokenize("GPU 训练, the Cat!") == ["gpu", "训", "练", "the", "cat"]
    text = "The quick brown fox, jumped over 2 lazy dogs!"
    assert CJKTokenizer().tokenize(text) == tokenizers.DefaultTokenizer(use_stemmer=False).tokenize(text)
    assert tokenizers.DefaultTokenizer().tokenize("今天天气很好") == []  # why a custom tokenizer is needed


def test_extract_code_and_reasoning():
    assert extract_code("Here:\n```python\ndef f():\n    return 1\n```\nDone") == "def f():\n    return 1\n"
    assert extract_code("```\nx = 1\n```") == "x = 1\n"
    assert extract_code("x = 2") == "x = 2"
    assert extract_code("```python\ndef g(): pass") == "def g(): pass"  # ran out of tokens before the fence closed
    assert strip_reasoning("<think>long</think> 42") == "42"
