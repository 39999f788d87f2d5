"""The `dataset` commands keep the contract scripts rely on (JSON shapes, exit codes, one-line errors)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np


def _cli(home, *args):
    env = {**os.environ, "PLATFORM_HOME": str(home)}
    env.pop("PLATFORM_SECRET_KEY", None)
    return subprocess.run(
        [sys.executable, "-m", "platform_core", "dataset", *args], capture_output=True, text=True, env=env, timeout=300
    )


def _ok(out) -> dict | list:
    assert out.returncode == 0, out.stdout + out.stderr
    return json.loads(out.stdout)


def test_the_dataset_commands_keep_their_contract(tmp_path, write, demo_model_dir):
    from transformers import AutoTokenizer

    home = tmp_path / "ws"
    rows = [
        {"prompt": f"Explain item {i} of the list in one sentence.", "response": f"Item {i} is simple."}
        for i in range(30)
    ]
    rows += [
        {"prompt": rows[3]["prompt"], "response": "dup"},
        {"prompt": "  ", "response": "blank prompt"},
        {"prompt": "EXPLAIN ITEM 4 OF THE LIST, IN ONE SENTENCE!", "response": "near duplicate"},
    ]
    source = write.jsonl("cli.jsonl", rows)

    added = _ok(_cli(home, "add", str(source), "--type", "sft", "--name", "cli set", "--json"))
    assert isinstance(added["id"], int) and added["rows"] == 33

    refused = _cli(
        home,
        "add",
        str(write.raw("bad.jsonl", b'{"prompt": "a", "response": "b"}\n{"prompt": ')),
        "--type",
        "sft",
        "--name",
        "bad",
        "--json",
    )
    assert refused.returncode != 0 and refused.stdout == ""
    message = refused.stderr.strip()
    assert len(message.splitlines()) == 1 and "bad.jsonl" in message and "line 2" in message

    audit = _ok(
        _cli(home, "audit", str(added["id"]), "--tokenizer", str(demo_model_dir), "--max-length", "12", "--json")
    )
    assert audit["rows"] == 33
    for check in ("empty", "duplicate_exact", "duplicate_normalized", "length_outliers", "format_errors"):
        assert set(audit["checks"][check]) >= {"count", "rows"} and audit["checks"][check]["count"] == len(
            audit["checks"][check]["rows"]
        )
    assert audit["checks"]["empty"]["rows"] == [31]
    assert audit["checks"]["duplicate_exact"]["rows"] == [30]
    assert audit["checks"]["duplicate_normalized"]["rows"] == [30, 32]
    tokenizer = AutoTokenizer.from_pretrained(str(demo_model_dir))
    prompts = [len(x) for x in tokenizer([r["prompt"] for r in rows], add_special_tokens=False)["input_ids"]]
    for field in ("prompt", "response"):
        for unit in ("chars", "tokens"):
            assert set(audit["lengths"][field][unit]) >= {"p50", "p90", "p99", "max", "mean"}
    assert audit["lengths"]["prompt"]["tokens"]["max"] == max(prompts)
    assert audit["lengths"]["prompt"]["tokens"]["p90"] == np.percentile(prompts, 90)
    assert audit["truncated"]["prompt"] == np.mean(np.array(prompts) > 12)

    listed = _ok(_cli(home, "list", "--json"))
    assert [d["id"] for d in listed] == [added["id"]] and listed[0]["rows"] == 33
    shown = _ok(_cli(home, "show", "cli set", "--json"))
    assert shown["type"] == "sft" and shown["field_config"]["format"] == "prompt_response"

    exported = _ok(_cli(home, "export", str(added["id"]), "--json"))
    assert exported["rows"] == 30 and exported["dropped_rows"] == [30, 31, 32] and exported["parent_id"] == added["id"]
    converted = _ok(_cli(home, "convert", str(exported["id"]), "--target", "verl_sft", "--json"))
    assert converted["path"].endswith(".parquet") and os.path.isfile(converted["path"])

    removed = _ok(_cli(home, "remove", str(added["id"]), "--json"))
    assert removed["id"] == added["id"]
    assert [d["id"] for d in _ok(_cli(home, "list", "--json"))] == [exported["id"]]
    missing = _cli(home, "show", str(added["id"]), "--json")
    assert missing.returncode != 0 and "does not exist" in missing.stderr


def test_the_same_file_under_another_name_and_sync_errors(tmp_path, write):
    home = tmp_path / "ws"
    source = write.jsonl("same.jsonl", [{"prompt": f"q{i}", "response": f"a{i}"} for i in range(4)])
    first = _ok(_cli(home, "add", str(source), "--type", "sft", "--name", "first", "--json"))
    second = _ok(_cli(home, "add", str(source), "--type", "sft", "--name", "second", "--json"))
    assert second["id"] != first["id"] and second["name"] == "second" and not second["existing"]
    shown = _ok(_cli(home, "show", "second", "--json"))
    assert shown["id"] == second["id"] and shown["file"] == _ok(_cli(home, "show", "first", "--json"))["file"]
    again = _ok(_cli(home, "add", str(source), "--type", "sft", "--name", "second", "--json"))
    assert again["id"] == second["id"] and again["existing"]

    for args in (["--all"], ["--all", "--kind", "verl_sft"], [str(first["id"]), "--kind", "original"]):
        out = _cli(home, "sync", *args, "--connection", "nowhere", "--json")
        assert out.returncode == 2 and out.stdout == "", (args, out.stdout, out.stderr)
        assert "connection 'nowhere' does not exist" in out.stderr
    out = _cli(home, "sync", "--all", "--kind", "bogus", "--connection", "nowhere")
    assert out.returncode == 2 and "sync kind: 'bogus'" in out.stderr
    out = _cli(home, "sync", "--connection", "nowhere")
    assert out.returncode == 2 and "connection 'nowhere'" in out.stderr
