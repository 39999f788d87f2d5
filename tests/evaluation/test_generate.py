"""Generation set-up: backend selection (vLLM only with vLLM and a GPU), resumable output, run parameters."""

from __future__ import annotations

import json

import pytest

from platform_core.errors import InvalidInput
from platform_core.evaluation.genscript import apply_stops, choose_backend, finished_ids, render, vllm_importable
from platform_core.evaluation.runs import GEN_DEFAULTS, create_run, generation_params, resolve_model


@pytest.mark.parametrize(
    ("requested", "vllm", "gpus", "expected"),
    [
        ("auto", True, 1, "vllm"),
        ("auto", True, 0, "transformers"),
        ("auto", False, 8, "transformers"),
        ("auto", False, 0, "transformers"),
        ("transformers", True, 4, "transformers"),
        ("vllm", True, 2, "vllm"),
    ],
)
def test_backend_selection(requested, vllm, gpus, expected):
    assert choose_backend(requested, vllm, gpus) == expected


def test_vllm_requested_without_vllm_or_gpu_fails_clearly():
    with pytest.raises(SystemExit, match="vllm is not installed"):
        choose_backend("vllm", False, 1)
    with pytest.raises(SystemExit, match="no GPU"):
        choose_backend("vllm", True, 0)
    with pytest.raises(SystemExit, match="unknown backend"):
        choose_backend("tgi", True, 1)


def test_this_machine_picks_transformers():
    from platform_core.evaluation.genscript import gpu_count

    assert choose_backend("auto", vllm_importable(), gpu_count()) == (
        "vllm" if vllm_importable() and gpu_count() else "transformers"
    )


def test_finished_ids_cut_a_torn_last_line(tmp_path):
    out = tmp_path / "generations.jsonl"
    out.write_text(json.dumps({"id": 0, "predictions": ["a"]}) + "\n" + '{"id": 1, "predic', encoding="utf-8")
    assert finished_ids(str(out)) == {0}
    assert out.read_text(encoding="utf-8").endswith("\n")
    assert finished_ids(str(tmp_path / "missing.jsonl")) == set()


def test_stop_strings_cut_the_output():
    assert apply_stops("7\n\nQuestion: next", ["\n\n"]) == ("7", True)
    assert apply_stops("7", ["\n\n"]) == ("7", False)


def test_generation_parameters_have_the_guide_defaults_and_ranges():
    params = generation_params()
    assert (params["max_new_tokens"], params["temperature"], params["top_p"], params["samples"]) == (512, 0.7, 0.9, 1)
    assert params == GEN_DEFAULTS
    assert generation_params({"temperature": 0, "stop": "\n\n"})["stop"] == ["\n\n"]
    for bad, message in [({"temperature": 3}, "temperature"), ({"top_p": 0}, "top_p"), ({"samples": 0}, "samples"),
                         ({"backend": "tgi"}, "backend"), ({"beams": 2}, "unknown")]:  # fmt: skip
        with pytest.raises(InvalidInput, match=message):
            generation_params(bad)


def test_models_resolve_from_the_registry_a_directory_or_a_remote_path(platform, demo_model_dir):
    from platform_core.models import register_model

    register_model(platform, demo_model_dir, name="tiny")
    assert resolve_model(platform, "tiny") == ("tiny", str(demo_model_dir.resolve()))
    assert resolve_model(platform, str(demo_model_dir))[1] == str(demo_model_dir.resolve())
    assert resolve_model(platform, "~/models/qwen", "ssh:lab") == ("~/models/qwen", "~/models/qwen")
    with pytest.raises(InvalidInput, match="neither a registered model"):
        resolve_model(platform, str(demo_model_dir.parent))
    with pytest.raises(InvalidInput, match="is on local, but the run targets ssh:lab"):
        resolve_model(platform, "tiny", "ssh:lab")
    with pytest.raises(InvalidInput, match="not allowed"):
        resolve_model(platform, "/models/x; rm -rf ~", "ssh:lab")


def test_a_run_snapshots_the_eval_set_and_checks_pass_at_k(platform, demo_model_dir, eval_set):
    from platform_core.evaluation.runs import get_run, output_dir

    run_id = create_run(platform, "snap", str(demo_model_dir), eval_set, None, {"max_new_tokens": 4})
    run = get_run(platform, run_id)
    assert run["state"] == "pending" and run["metrics"] == ["accuracy", "exact_match"]  # the qa defaults
    lines = (output_dir(platform, run_id) / "items.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 6 and json.loads(lines[0])["id"] == 0
    with pytest.raises(InvalidInput, match="samples: pass@5 needs at least 5 samples per question \\(samples is 2\\)"):
        create_run(platform, "code", str(demo_model_dir), eval_set, ["pass@5"], {"samples": 2})


def test_pass_at_k_above_1_is_refused_with_greedy_decoding(platform, demo_model_dir, eval_set):
    """With temperature 0 the samples are copies, so pass@k would silently equal pass@1."""
    from platform_core.evaluation.runs import get_run

    with pytest.raises(InvalidInput, match=r"temperature: pass@5 needs sampling, but temperature is 0 \(greedy\)"):
        create_run(platform, "greedy", str(demo_model_dir), eval_set, ["pass@5"], {"samples": 5, "temperature": 0})
    with pytest.raises(InvalidInput, match="temperature: pass@3 needs sampling"):
        create_run(platform, "greedy", str(demo_model_dir), eval_set, ["pass@k"], {"samples": 3, "temperature": 0}, k=3)
    assert platform.store.count("eval_runs") == 0  # nothing recorded
    sampled = create_run(platform, "t08", str(demo_model_dir), eval_set, ["pass@5"], {"samples": 5, "temperature": 0.8})
    greedy = create_run(platform, "p1", str(demo_model_dir), eval_set, ["pass@1"], {"samples": 5, "temperature": 0})
    assert get_run(platform, sampled)["metrics"] == ["pass@5"] and get_run(platform, greedy)["metrics"] == ["pass@1"]


def test_the_chat_template_of_the_demo_tokenizer_is_applied(demo_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(demo_model_dir)
    text, applied = render(tokenizer, "What is 2 + 3?", "auto")
    assert applied and text.startswith("<|im_start|>") and "What is 2 + 3?" in text
    assert text.endswith("<|im_start|>assistant\n")  # the generation prompt
    assert render(tokenizer, "What is 2 + 3?", "on") == (text, True)
    assert render(tokenizer, "What is 2 + 3?", "off") == ("What is 2 + 3?", False)
