"""Upload: real files of every kind are stored by content hash; broken files get one clear message and leave nothing."""

from __future__ import annotations

import gzip
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from platform_core.datasets.service import add_dataset, dataset_path, get_dataset, list_datasets, record_detail
from platform_core.errors import InvalidInput

SFT = [{"prompt": f"问题 {i}: what is {i}+1?", "response": str(i + 1)} for i in range(6)]
GRPO = [{"prompt": f"计算: {i} + 3 = ?", "data_source": "math", "solution": str(i + 3)} for i in range(5)]
PPO = [
    {"prompt": "请写一首关于春天的诗", "data_source": "creative"},
    {"prompt": "Write a haiku", "data_source": "creative"},
]
DPO = [
    {"prompt": "如何学习编程？", "chosen": "从 Python 开始。", "rejected": "随便学学"},
    {"prompt": "1+1?", "chosen": "2", "rejected": "3"},
]
EVAL = [
    {"prompt": "2+2=", "reference": "4", "category": "addition"},
    {"prompt": "5-3=", "reference": "2", "category": "subtraction"},
]
CHAT = [
    {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
        ]
    },
    {
        "messages": [
            {"role": "user", "content": "2+2?"},
            {"role": "assistant", "content": "4"},
            {"role": "user", "content": "and 3+3?"},
            {"role": "assistant", "content": "6"},
        ]
    },
]
BY_TYPE = {"sft": SFT, "grpo": GRPO, "ppo": PPO, "dpo": DPO, "eval": EVAL}


@pytest.mark.parametrize("fmt", ["jsonl", "json", "parquet"])
@pytest.mark.parametrize("kind", list(BY_TYPE))
def test_every_type_in_every_format_is_stored_under_its_content_hash(platform, write, stored, kind, fmt):
    path = getattr(write, fmt)(f"{kind}.{fmt}", BY_TYPE[kind])
    result = add_dataset(platform, path, kind, f"my {kind}", description="a test set")
    record = get_dataset(platform, result["id"])
    assert record["rows"] == len(BY_TYPE[kind]) and record["type"] == kind and record["format"] == fmt
    assert [c["name"] for c in record["columns"]] == list(BY_TYPE[kind][0])
    assert record["size_bytes"] == path.stat().st_size and record["description"] == "a test set"
    stored_path = dataset_path(platform, record)
    assert stored_path.name.startswith(record["content_hash"][:32]) and stored_path.read_bytes() == path.read_bytes()
    assert stored() == [stored_path.relative_to(platform.workspace.root)]
    assert result["flagged"] == 0 and not result["warnings"]


def test_sft_chat_messages_are_accepted(platform, write):
    result = add_dataset(platform, write.jsonl("chat.jsonl", CHAT), "sft", "chat")
    assert result["field_config"]["format"] == "messages" and result["rows"] == 2 and result["flagged"] == 0


def test_a_verl_format_grpo_parquet_uses_reward_model_ground_truth(platform, write):
    rows = [
        {
            "data_source": "openai/gsm8k",
            "prompt": [{"role": "user", "content": f"{i}+1?"}],
            "ability": "math",
            "reward_model": {"style": "rule", "ground_truth": str(i + 1)},
            "extra_info": {"index": i},
        }
        for i in range(4)
    ]
    result = add_dataset(platform, write.parquet("gsm8k.parquet", rows), "grpo", "gsm8k")
    assert result["field_config"]["answer_field"] == "reward_model.ground_truth"
    assert result["field_config"]["label_fields"] == ["data_source", "ability"] and result["flagged"] == 0


def test_utf8_bom_is_accepted_and_dropped(platform, write):
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in SFT).encode("utf-8")
    result = add_dataset(platform, write.raw("bom.jsonl", b"\xef\xbb\xbf" + data), "sft", "bom")
    assert result["encoding"] == "utf-8 with BOM"
    assert dataset_path(platform, get_dataset(platform, result["id"])).read_bytes() == data


def test_gbk_is_detected_and_converted_only_when_the_user_agrees(platform, write, stored):
    records = [
        {
            "prompt": f"请解释机器学习中的过拟合现象，第{i}题",
            "response": "过拟合是模型记住了训练数据，却在新数据上表现变差。",
        }
        for i in range(20)
    ]
    path = write.jsonl("gbk.jsonl", records, encoding="gbk")
    with pytest.raises(InvalidInput) as refused:
        add_dataset(platform, path, "sft", "gbk")
    message = str(refused.value)
    assert "gbk.jsonl" in message and "line 1" in message and "gb" in message.lower() and "convert" in message
    assert stored() == [] and list_datasets(platform) == []
    result = add_dataset(platform, path, "sft", "gbk", convert_encoding=True)
    assert result["encoding"].lower().startswith("gb") and "converted from" in result["warnings"][0]
    stored_text = dataset_path(platform, get_dataset(platform, result["id"])).read_text(encoding="utf-8")
    assert json.loads(stored_text.splitlines()[3]) == records[3]
    explicit = add_dataset(platform, path, "sft", "gbk", convert_encoding="gbk")
    assert explicit["id"] == result["id"] and explicit["existing"]


def test_an_upload_stream_is_stored_like_a_file(platform):
    data = "".join(json.dumps(r) + "\n" for r in DPO).encode()
    stream = io.BytesIO(data)
    stream.name = "prefs.jsonl"
    result = add_dataset(platform, stream, "dpo", "prefs")
    assert result["rows"] == 2 and get_dataset(platform, "prefs")["original_name"] == "prefs.jsonl"


def test_identical_content_is_reused_and_a_changed_file_becomes_a_new_version(platform, write, stored):
    path = write.jsonl("a.jsonl", SFT)
    first = add_dataset(platform, path, "sft", "math")
    again = add_dataset(platform, path, "sft", "math")
    assert again["id"] == first["id"] and again["existing"] and "already stored as dataset" in again["warnings"][0]
    as_eval = add_dataset(platform, write.jsonl("e.jsonl", EVAL), "eval", "math-eval")
    changed = add_dataset(platform, write.jsonl("a2.jsonl", SFT[:4]), "sft", "math")
    assert changed["id"] not in (first["id"], as_eval["id"]) and changed["parent_id"] == first["id"]
    assert get_dataset(platform, "math")["id"] == changed["id"]
    versions = {r["id"]: r["version"] for r in list_datasets(platform)}
    assert versions[first["id"]] == 1 and versions[changed["id"]] == 2
    assert len(stored()) == 3


def test_identical_content_under_another_name_gets_its_own_record_sharing_the_file(platform, write, stored):
    path = write.jsonl("a.jsonl", SFT)
    first = add_dataset(platform, path, "sft", "math")
    other = add_dataset(platform, path, "sft", "other name")
    assert other["id"] != first["id"] and not other["existing"] and other["name"] == "other name"
    assert other["shares_file_with"] == first["id"] and "the file is shared" in other["warnings"][0]
    record = get_dataset(platform, "other name")
    assert record["id"] == other["id"] and record["parent_id"] is None
    assert record["path"] == get_dataset(platform, "math")["path"] and len(stored()) == 1
    assert add_dataset(platform, path, "sft", "other name")["id"] == other["id"]  # same name, same content: reused
    # an older version's content uploaded again under its name becomes the latest version again
    newer = add_dataset(platform, write.jsonl("b.jsonl", SFT[:3]), "sft", "math")
    back = add_dataset(platform, path, "sft", "math")
    assert back["id"] not in (first["id"], newer["id"]) and back["parent_id"] == newer["id"]
    assert get_dataset(platform, "math")["id"] == back["id"] and len(stored()) == 2
    with pytest.raises(InvalidInput, match="dataset name"):
        add_dataset(platform, path, "sft", "../x")


def test_rows_are_reported_at_their_real_line(platform, write):
    lines = [
        json.dumps(SFT[0]),
        "",
        json.dumps(SFT[1]),
        "   ",
        json.dumps({"prompt": "  ", "response": "blank prompt"}),
        "{}",
        json.dumps(SFT[2]),
        json.dumps({"response": "no prompt", "prompt": None}),
    ]
    path = write.raw("gaps.jsonl", ("\n".join(lines) + "\n").encode())
    result = add_dataset(platform, path, "sft", "gaps")
    assert result["rows"] == 6 and result["flagged"] == 3
    assert "gaps.jsonl: line 5: field 'prompt': empty (only whitespace)" in result["warnings"][0]
    assert "gaps.jsonl: line 6: field 'prompt': missing" in result["warnings"][0]
    assert [record_detail(platform, result["id"], row)["place"] for row in (2, 3, 5)] == ["line 5", "line 6", "line 8"]
    assert record_detail(platform, result["id"], 5)["record"]["response"] == "no prompt"


def test_a_pandas_category_column_is_read_as_its_values(platform, write):
    import pandas as pd

    frame = pd.DataFrame(
        {
            "prompt": pd.Categorical([f"q{i % 3}" for i in range(6)]),
            "response": [f"a{i}" for i in range(6)],
            "category": pd.Categorical(["x", "y"] * 3),
        }
    )
    path = write.folder / "categories.parquet"
    frame.to_parquet(path)
    assert pa.types.is_dictionary(pq.read_schema(path).field("prompt").type)
    result = add_dataset(platform, path, "sft", "categories")
    assert result["flagged"] == 0 and result["rows"] == 6
    columns = {c["name"]: c["type"] for c in result["columns"]}
    assert columns["prompt"] == "string" and columns["category"] == "string"
    assert record_detail(platform, result["id"], 4)["record"]["prompt"] == "q1"


def test_stale_partial_uploads_are_removed_when_an_upload_starts(platform, write):
    import os
    import time

    folder = platform.workspace.datasets
    folder.mkdir(parents=True, exist_ok=True)
    stale = folder / ".incoming-0123abcd.jsonl"
    stale.write_bytes(b'{"prompt": "half an upl')
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    live = folder / ".incoming-4567ef.jsonl"  # another upload in progress: recent, kept
    live.write_bytes(b"{")
    add_dataset(platform, write.jsonl("new.jsonl", SFT), "sft", "new")
    assert not stale.exists() and live.exists()


def test_flagged_rows_are_stored_with_a_warning_naming_them(platform, write):
    rows = [*SFT, {"prompt": "x", "response": 5}, {"prompt": "   ", "response": "y"}]
    result = add_dataset(platform, write.jsonl("some-bad.jsonl", rows), "sft", "some bad")
    assert result["flagged"] == 2
    assert "some-bad.jsonl: line 7: field 'response': not a string (found a JSON number)" in result["warnings"][0]
    assert "some-bad.jsonl: line 8: field 'prompt': empty (only whitespace)" in result["warnings"][0]


def _parquet_bytes(records) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(records), sink)
    return sink.getvalue()


def _jsonl_bytes(records) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()


PRETTY = json.dumps(SFT, ensure_ascii=False, indent=2).encode()
GOOD_PARQUET = _parquet_bytes(SFT)

# (file name, content, type, texts the message must contain besides the file name)
MALFORMED = [
    ("empty.jsonl", b"", "sft", ["empty"]),
    ("blank-lines.jsonl", b"\n\n   \n", "sft", ["empty"]),
    ("bom-only.json", b"\xef\xbb\xbf", "sft", ["empty"]),
    ("empty-array.json", b"[]", "sft", ["no rows"]),
    ("empty-array-spaces.json", b"  [ \n ]  ", "grpo", ["no rows"]),
    ("truncated.json", b'[{"prompt": "a", "response": "b"}, {"prompt": "c"', "sft", ["line 1", "truncated"]),
    ("truncated-pretty.json", PRETTY[: len(PRETTY) // 2], "sft", ["truncated", "line "]),
    ("truncated.jsonl", _jsonl_bytes(SFT[:2]) + b'{"prompt": "3+1?", "respo', "sft", ["line 3", "truncated"]),
    (
        "bad-line.jsonl",
        _jsonl_bytes(SFT[:1]) + b'{"prompt": "a" "response": "b"}\n' + _jsonl_bytes(SFT[1:2]),
        "sft",
        ["line 2", "invalid JSON"],
    ),
    ("array-line.jsonl", _jsonl_bytes(SFT[:1]) + b"[1, 2]\n", "sft", ["line 2", "array"]),
    (
        "two-objects-one-line.jsonl",
        _jsonl_bytes(SFT[:2])
        + b'{"prompt": "a", "response": "b"}{"prompt": "c", "response": "d"}\n'
        + _jsonl_bytes(SFT[2:4]),
        "sft",
        ["line 3", "invalid JSON"],
    ),
    ("null-line.jsonl", _jsonl_bytes(SFT[:2]) + b"null\n" + _jsonl_bytes(SFT[2:4]), "sft", ["line 3", "a JSON null"]),
    # pyarrow's reader crashes the process on a null at the start of a block: it must never see this file
    ("null-first-line.jsonl", b"null\n" + _jsonl_bytes(SFT), "sft", ["line 1", "a JSON null"]),
    ("object-then-null.jsonl", _jsonl_bytes(SFT[:1]) + b'{"prompt": "a", "response": "b"} null\n', "sft", ["line 2"]),
    ("number-line.jsonl", _jsonl_bytes(SFT[:2]) + b"42\n", "sft", ["line 3", "number"]),
    ("array-in-jsonl.jsonl", PRETTY, "sft", ["line 1", ".json"]),
    ("jsonl-in-json.json", _jsonl_bytes(SFT), "sft", ["line 1", ".jsonl"]),
    ("object.json", b'{"data": [{"prompt": "a", "response": "b"}]}', "sft", ["line 1", "not an array"]),
    ("scalars.json", b"[1, 2, 3]", "sft", ["row 0", "number"]),
    ("strings.json", b'[{"prompt": "a", "response": "b"}, "x"]', "sft", ["row 1", "string"]),
    ("trailing.json", b'[{"prompt": "a", "response": "b"}] extra', "sft", ["line 1", "after the closing"]),
    (
        "missing-comma.json",
        b'[{"prompt": "a", "response": "b"}\n {"prompt": "c", "response": "d"}]',
        "sft",
        ["line 2", "expected ','"],
    ),
    ("nan.json", b'[{"prompt": "a", "response": NaN}]', "sft", ["line 1", "NaN"]),
    ("json-text.parquet", _jsonl_bytes(SFT), "sft", ["JSON text", "Parquet"]),
    ("random.parquet", bytes(range(256)) * 4, "sft", ["not a Parquet file"]),
    ("truncated.parquet", GOOD_PARQUET[: len(GOOD_PARQUET) // 2], "sft", ["Parquet", "truncated"]),
    ("parquet-inside.jsonl", GOOD_PARQUET, "sft", ["Parquet file", ".parquet"]),
    ("gzipped.jsonl", gzip.compress(_jsonl_bytes(SFT)), "sft", ["gzip"]),
    (
        "latin1-line3.jsonl",
        _jsonl_bytes(SFT[:2]) + '{"prompt": "café crème brûlée façade", "response": "naïve"}\n'.encode("latin-1"),
        "sft",
        ["line 3", "UTF-8"],
    ),
    (
        "binary-garbage.jsonl",
        b'{"prompt": "a", "response": "b"}\n' + bytes([0xFF, 0xC0, 0x80, 0xFE]) * 64,
        "sft",
        ["line 2", "UTF-8"],
    ),
    (
        "utf16.jsonl",
        "\ufeff".encode("utf-16-le") + _jsonl_bytes(SFT).decode().encode("utf-16-le"),
        "sft",
        ["UTF-16", "line 1"],
    ),
    ("cut-multibyte.jsonl", _jsonl_bytes(SFT[:1]) + '{"prompt": "机器'.encode()[:-1], "sft", ["line 2", "multi-byte"]),
    ("no-fields.jsonl", b"{}\n{}\n", "sft", ["no fields"]),
    (
        "sft-other-columns.jsonl",
        _jsonl_bytes([{"question": "q", "answer": "a"}]),
        "sft",
        ["'question', 'answer'", "--prompt-field"],
    ),
    (
        "dpo-all-identical.jsonl",
        _jsonl_bytes([{"prompt": "p", "chosen": "same", "rejected": "same"}] * 3),
        "dpo",
        ["no row is valid", "line 1", "chosen and rejected are the same text"],
    ),
    (
        "grpo-no-solution.jsonl",
        _jsonl_bytes([{"prompt": "1+1", "data_source": "math"}]),
        "grpo",
        ["'solution'", "--answer-field"],
    ),
    (
        "grpo-null-solutions.json",
        json.dumps([{"prompt": "1+1", "solution": None}] * 2).encode(),
        "grpo",
        ["no row is valid", "row 0", "'solution'", "missing"],
    ),
    (
        "sft-numbers.jsonl",
        _jsonl_bytes([{"prompt": i, "response": "r"} for i in range(3)]),
        "sft",
        ["no row is valid", "line 1", "not a string"],
    ),
    (
        "sft-bad-messages.jsonl",
        _jsonl_bytes([{"messages": [{"role": "user", "content": 5}]}] * 2),
        "sft",
        ["no row is valid", "line 1", "content is a JSON number, not a string"],
    ),
    (
        "sft-no-assistant.jsonl",
        _jsonl_bytes([{"messages": [{"role": "user", "content": "hi"}]}] * 2),
        "sft",
        ["no row is valid", "no assistant message"],
    ),
    (
        "ppo-blank-prompts.jsonl",
        _jsonl_bytes([{"prompt": "   "}, {"prompt": "\t"}]),
        "ppo",
        ["no row is valid", "empty"],
    ),
    ("eval-no-reference.json", json.dumps([{"prompt": "2+2", "answer": "4"}]).encode(), "eval", ["'reference'"]),
    ("data.csv", b"prompt,response\na,b\n", "sft", ["unsupported file type"]),
]


def test_the_malformed_corpus_is_large_enough():
    assert len(MALFORMED) >= 30


@pytest.mark.parametrize(("name", "content", "kind", "expected"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_a_malformed_file_gets_one_clear_message_and_leaves_nothing(
    platform, write, stored, name, content, kind, expected
):
    good = add_dataset(platform, write.jsonl("good.jsonl", SFT), "sft", "good")
    before = stored()
    with pytest.raises(InvalidInput) as refused:
        add_dataset(platform, write.raw(name, content), kind, "broken")
    message = str(refused.value)
    assert name in message, message
    for text in expected:
        assert text in message, (text, message)
    assert "\n" not in message and "Traceback" not in message
    assert stored() == before
    assert [r["id"] for r in list_datasets(platform)] == [good["id"]]
    again = add_dataset(platform, write.jsonl("good2.jsonl", SFT[:3]), "sft", "after")
    assert get_dataset(platform, again["id"])["rows"] == 3
