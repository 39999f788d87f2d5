"""The audit: exact check counts on planted defects, token statistics equal to the tokenizer's, caching, tasks."""

from __future__ import annotations

import unicodedata

import numpy as np
import pyarrow as pa
import pytest

from platform_core.datasets.audit import audit_dataset, cached_audit, normalize_text, start_audit_task
from platform_core.datasets.service import add_dataset, get_dataset, update_field_config
from platform_core.tasks import wait_task

TOPICS = [
    "gradient descent",
    "attention",
    "tokenization",
    "overfitting",
    "learning rates",
    "LoRA adapters",
    "reward models",
    "beam search",
    "batch norm",
    "dropout",
    "KL penalties",
    "data mixing",
]


def reply(tag: str) -> str:
    """A response of ordinary length (so only the planted outliers are outliers)."""
    return f"{tag}: an answer of about the same length as all the others."


def planted_rows() -> tuple[list[dict], dict[str, list[int]]]:
    """60 clean rows, then rows with known defects; returns the rows and the rows each check must flag."""
    rows = [
        {
            "prompt": f"Question {i}: explain {TOPICS[i % 12]} to a new student, case {i}.",
            "response": f"Answer {i}: {TOPICS[i % 12]} is explained here in about sixty characters.",
            "category": ["basics", "advanced", "math"][i % 3],
        }
        for i in range(60)
    ]
    full_width = unicodedata.normalize("NFKC", rows[7]["prompt"]).translate(
        {c: c + 0xFEE0 for c in range(0x21, 0x7F)}
    )  # ASCII -> full-width forms
    rows += [
        {"prompt": None, "response": reply("a response without a prompt"), "category": "basics"},  # 60 empty
        {"prompt": "Where is the response of this row? It is missing.", "category": "basics"},  # 61 empty
        {"prompt": "   \t ", "response": reply("whitespace-only prompt"), "category": "basics"},  # 62 empty
        {"prompt": rows[5]["prompt"], "response": reply("another answer"), "category": "math"},  # 63 exact duplicate
        {"prompt": rows[5]["prompt"], "response": reply("a third answer"), "category": "math"},  # 64 exact duplicate
        {"prompt": rows[10]["prompt"], "response": reply("again"), "category": "math"},  # 65 exact duplicate
        {"prompt": full_width, "response": reply("full-width variant"), "category": "math"},  # 66 normalized duplicate
        {
            "prompt": "  " + rows[8]["prompt"].upper().replace(" ", "   "),
            "response": reply("case"),
            "category": "math",
        },  # 67
        {
            "prompt": rows[9]["prompt"].replace(",", "，").replace(".", "。！") + "?",
            "response": reply("punct"),
            "category": "math",
        },  # 68 normalized duplicate (CJK punctuation)
        {
            "prompt": "Write the longest possible answer about everything you know.",
            "response": "x" * 20000,
            "category": "basics",
        },  # 69 too long
        {"prompt": "hi", "response": "a prompt far shorter than every other one", "category": "basics"},  # 70 too short
        {"prompt": "What is forty-two as a number?", "response": 42, "category": "math"},  # 71 format error
        {"prompt": ["a", "list"], "response": reply("the prompt is a list"), "category": "math"},  # 72 format error
    ]
    expected = {
        "empty": [60, 61, 62],
        "duplicate_exact": [63, 64, 65],
        "duplicate_normalized": [63, 64, 65, 66, 67, 68],
        "length_outliers": [69, 70],
        "format_errors": [71, 72],
    }
    return rows, expected


@pytest.fixture
def planted(platform, write):
    rows, expected = planted_rows()
    result = add_dataset(platform, write.jsonl("planted.jsonl", rows), "sft", "planted")
    return result["id"], rows, expected


def test_each_check_flags_exactly_the_planted_rows(platform, planted):
    dataset_id, rows, expected = planted
    result = audit_dataset(platform, dataset_id)
    assert result["rows"] == len(rows) == 73
    for check, flagged in expected.items():
        assert result["checks"][check]["rows"] == flagged, check
        assert result["checks"][check]["count"] == len(flagged), check
    assert result["valid_rows"] == 73 - 5
    assert result["checks"]["empty"]["fields"] == {"prompt": 2, "response": 1}
    errors = {e["row"]: e for e in result["checks"]["format_errors"]["errors"]}
    assert errors[71]["field"] == "response" and errors[71]["place"] == "line 72"
    assert "not a string (found a JSON number)" in errors[71]["message"]
    assert "not a string (found a JSON array)" in errors[72]["message"]
    fences = result["checks"]["length_outliers"]["fences"]
    assert fences["response"]["too_long"] == 1 and fences["prompt"]["too_short"] == 1
    assert "Q1 / s^3" in result["checks"]["length_outliers"]["rule"]
    assert result["labels"]["category"]["values"][0] == ["math", sum(r["category"] == "math" for r in rows)]
    assert result["distributions"]["category"]["kind"] == "categorical"


def test_the_fast_reader_and_parquet_give_the_same_counts(platform, write):
    rows, expected = planted_rows()
    clean = [r for i, r in enumerate(rows) if i not in (71, 72)]  # uniform types: pyarrow's fast path
    for name, writer in (("planted.jsonl", write.jsonl), ("planted.parquet", write.parquet)):
        dataset_id = add_dataset(platform, writer(name, clean), "sft", name)["id"]
        result = audit_dataset(platform, dataset_id)
        for check in ("empty", "duplicate_exact", "duplicate_normalized", "length_outliers"):
            assert result["checks"][check]["rows"] == expected[check], (name, check)
        assert result["checks"]["format_errors"]["count"] == 0


def test_normalization_matches_a_plain_python_reference():
    samples = [
        "Ｈｅｌｌｏ，　Ｗｏｒｌｄ！",
        "hello world",
        "「你好」，世界。",
        "你好世界",
        "Tab\tand\nnewline",
        "ﾃｽﾄ",
        "テスト",
        "Straße",
        "A-B_C",
        "1+1=2",
        "ＡＢＣ１２３",
        "...",
    ]

    def reference(text: str) -> str:
        return "".join(
            ch for ch in unicodedata.normalize("NFKC", text).lower() if unicodedata.category(ch)[0] not in "PZC"
        )

    assert normalize_text(pa.array(samples)).to_pylist() == [reference(s) for s in samples]


def test_token_statistics_equal_the_tokenizer_called_directly(platform, planted, demo_model_dir):
    from transformers import AutoTokenizer

    dataset_id, rows, _ = planted
    result = audit_dataset(platform, dataset_id, tokenizer=str(demo_model_dir), max_length=24)
    tokenizer = AutoTokenizer.from_pretrained(str(demo_model_dir))
    direct = {}
    for field in ("prompt", "response"):
        texts = [(i, r[field]) for i, r in enumerate(rows) if isinstance(r.get(field), str)]
        ids = tokenizer([t for _, t in texts], add_special_tokens=False)["input_ids"]
        direct[field] = dict(zip([i for i, _ in texts], [len(x) for x in ids], strict=True))
        lengths = np.array(list(direct[field].values()))
        stats = result["lengths"][field]["tokens"]
        assert stats["count"] == len(lengths)
        assert stats["max"] == lengths.max() and stats["mean"] == pytest.approx(lengths.mean())
        for p in (50, 90, 99):
            assert stats[f"p{p}"] == pytest.approx(np.percentile(lengths, p))
        assert result["truncated"][field] == pytest.approx((lengths > 24).mean())
        chars = np.array([len(r[field]) for r in rows if isinstance(r.get(field), str)])
        assert result["lengths"][field]["chars"]["p90"] == pytest.approx(np.percentile(chars, 90))
    both = [direct["prompt"][i] + direct["response"][i] for i in direct["prompt"] if i in direct["response"]]
    assert result["lengths"]["total"]["tokens"]["max"] == max(both)
    assert result["truncated"]["total"] == pytest.approx((np.array(both) > 24).mean())
    assert result["truncated_unit"] == "tokens"


def test_audits_are_cached_by_content_field_config_and_tokenizer(platform, planted, demo_model_dir):
    dataset_id, _, _ = planted
    record = get_dataset(platform, dataset_id)
    assert cached_audit(platform, record) is None
    first = audit_dataset(platform, dataset_id, tokenizer=str(demo_model_dir))
    assert not first["cached"]
    again = audit_dataset(platform, dataset_id, tokenizer=str(demo_model_dir), max_length=10)
    assert again["cached"] and again["lengths"] == first["lengths"] and "truncated" in again
    assert cached_audit(platform, record)["checks"] == first["checks"]
    update_field_config(platform, dataset_id, {"label_fields": []})
    assert cached_audit(platform, get_dataset(platform, dataset_id)) is None


def test_chat_datasets_are_measured_per_role(platform, write, demo_model_dir):
    rows = [
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "What is 2+2?"},
                {"role": "assistant", "content": "4"},
            ]
        },
        {
            "messages": [
                {"role": "user", "content": "What is 2+2?"},
                {"role": "assistant", "content": "Four."},
                {"role": "user", "content": "And 3+3?"},
                {"role": "assistant", "content": "Six."},
            ]
        },
        {"messages": [{"role": "user", "content": "WHAT is 2 + 2？"}, {"role": "assistant", "content": "4"}]},
        {"messages": [{"role": "robot", "content": "x"}, {"role": "assistant", "content": "y"}]},
        {
            "messages": [
                {"role": "user", "content": "what is 2+2"},
                {"role": "assistant", "content": "4!"},
                {"role": "user", "content": "AND 3+3"},
                {"role": "assistant", "content": "6"},
            ]
        },
    ]
    dataset_id = add_dataset(platform, write.jsonl("chat.jsonl", rows), "sft", "chat")["id"]
    result = audit_dataset(platform, dataset_id, tokenizer=str(demo_model_dir))
    assert result["lengths"]["prompt"]["chars"]["max"] == len("Be brief.") + len("What is 2+2?")  # system + user
    assert result["lengths"]["prompt"]["chars"]["count"] == 5
    assert result["lengths"]["response"]["chars"]["max"] == len("Four.") + len("Six.")
    assert result["turns"]["max"] == 4
    assert result["checks"]["format_errors"]["rows"] == [3]
    assert "role 'robot' is not one of" in result["checks"]["format_errors"]["errors"][0]["message"]
    # the prompt of a chat is all its non-assistant turns: row 4 repeats row 1 up to case and punctuation
    assert result["checks"]["duplicate_normalized"]["rows"] == [4] and result["checks"]["duplicate_exact"]["count"] == 0


def test_a_long_audit_runs_as_a_task_and_fills_the_cache(platform, planted, demo_model_dir):
    dataset_id, _, expected = planted
    task_id = start_audit_task(platform, dataset_id, str(demo_model_dir), 32)
    task = wait_task(platform, task_id, timeout_s=180)
    assert task["state"] == "completed", task["error"]
    assert task["result"]["checks"]["format_errors"] == 2 and task["progress"] == 1.0
    hit = cached_audit(platform, get_dataset(platform, dataset_id), demo_model_dir.resolve(), 32)
    assert hit is not None and hit["checks"]["duplicate_normalized"]["rows"] == expected["duplicate_normalized"]


def test_a_bad_tokenizer_choice_is_named(platform, planted, tmp_path):
    from platform_core.errors import InvalidInput, NotFound

    dataset_id, _, _ = planted
    with pytest.raises(InvalidInput, match="has no tokenizer files"):
        audit_dataset(platform, dataset_id, tokenizer=str(tmp_path))
    with pytest.raises(NotFound, match="not registered"):
        audit_dataset(platform, dataset_id, tokenizer="no-such-model")
    with pytest.raises(InvalidInput, match="max length"):
        audit_dataset(platform, dataset_id, max_length=0)


def test_every_length_entry_has_chars_and_tokens_with_a_tokenizer(platform, planted, demo_model_dir):
    dataset_id, rows, _ = planted
    plain = audit_dataset(platform, dataset_id)
    assert {"prompt", "response", "total"} <= set(plain["lengths"])
    assert all(set(units) == {"chars"} for units in plain["lengths"].values())
    total_chars = [
        len(r["prompt"]) + len(r["response"])
        for r in rows
        if isinstance(r.get("prompt"), str) and isinstance(r.get("response"), str)
    ]
    assert plain["lengths"]["total"]["chars"]["max"] == max(total_chars)
    with_tokens = audit_dataset(platform, dataset_id, tokenizer=str(demo_model_dir), max_length=24)
    for field, units in with_tokens["lengths"].items():
        assert set(units) == {"chars", "tokens"}, field
        for unit in ("chars", "tokens"):
            assert set(units[unit]) >= {"p50", "p90", "p99", "max", "mean"}
    assert with_tokens["lengths"]["total"]["chars"] == plain["lengths"]["total"]["chars"]
    assert set(with_tokens["histograms"]["total"]) == {"chars", "tokens"}
    cached = audit_dataset(platform, dataset_id, tokenizer=str(demo_model_dir))
    assert cached["cached"] and cached["lengths"] == with_tokens["lengths"]


def test_blank_chat_turns_are_empty_fields_naming_the_turn(platform, write):
    good = [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4"}]
    rows = [
        {"messages": good},
        {"messages": [{"role": "user", "content": "   "}, {"role": "assistant", "content": "an answer"}]},
        {"messages": [{"role": "user", "content": "a question"}, {"role": "assistant", "content": "\t"}]},
        {"messages": [{"role": "user", "content": "a question"}, {"role": "assistant", "content": ""}]},
        {"messages": [{"role": "user", "content": "no answer at all"}]},
        {"messages": [*good, {"role": "user", "content": "more?"}, {"role": "assistant", "content": "\u3000"}]},
    ]
    result = add_dataset(platform, write.jsonl("blank-turns.jsonl", rows), "sft", "blank turns")
    audit = audit_dataset(platform, result["id"])
    assert audit["checks"]["empty"]["rows"] == [1, 2, 3, 5]
    assert audit["checks"]["format_errors"]["rows"] == [4]  # no assistant turn at all
    messages = {e["row"]: e["message"] for e in audit["checks"]["empty"]["errors"]}
    assert messages[1] == "blank-turns.jsonl: line 2: field 'messages': message 0 (user) is empty (only whitespace)"
    assert messages[2].endswith("message 1 (assistant) is empty (only whitespace)")
    assert messages[3].endswith("message 1 (assistant) is empty (only whitespace)")
    assert messages[5].endswith("message 3 (assistant) is empty (only whitespace)")
    assert "no assistant message" in audit["checks"]["format_errors"]["errors"][0]["message"]
