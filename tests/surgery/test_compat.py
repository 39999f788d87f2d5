"""Compatibility checks read only headers and configs, and name the models and the first differing tensor."""

from __future__ import annotations

import shutil

import pytest

from platform_core.errors import InvalidInput, NotFound
from platform_core.surgery.compat import check_compatible, resolve_model_dir, tensor_index, tokenizer_fingerprint


def test_compatible_models_pass_with_their_facts(variants, demo_model_dir):
    report = check_compatible([demo_model_dir, variants["a"], variants["b"]])
    assert report["ok"] and report["problems"] == []
    first = report["models"][0]
    assert first["architecture"] == "Qwen2ForCausalLM" and first["dtype"] == "F32" and first["tokenizer"]
    assert len({m["tokenizer"] for m in report["models"]}) == 1


def test_other_architecture_is_refused_naming_both(demo_model_dir, misfits):
    report = check_compatible([demo_model_dir, misfits["llama"]])
    assert not report["ok"]
    (problem,) = report["problems"]
    assert "different architecture" in problem and "Qwen2ForCausalLM" in problem and "LlamaForCausalLM" in problem
    assert str(demo_model_dir) in problem and str(misfits["llama"]) in problem


def test_other_shapes_are_refused_naming_the_first_tensor(demo_model_dir, misfits):
    (problem,) = check_compatible([demo_model_dir, misfits["wider"]])["problems"]
    first_differing = next(
        name
        for name, info in tensor_index(demo_model_dir).items()
        if tensor_index(misfits["wider"])[name].shape != info.shape
    )
    assert problem.startswith(f"different shape for {first_differing}:")
    assert "[256, 128]" in problem or "[128, 256]" in problem
    assert str(misfits["wider"]) in problem


def test_other_tokenizer_is_refused(demo_model_dir, misfits):
    assert tokenizer_fingerprint(demo_model_dir) != tokenizer_fingerprint(misfits["other_tokenizer"])
    problems = check_compatible([demo_model_dir, misfits["other_tokenizer"]])["problems"]
    assert any(p.startswith("different tokenizer") and str(misfits["other_tokenizer"]) in p for p in problems)


def test_the_same_tokenizer_saved_again_has_the_same_fingerprint(demo_model_dir, tmp_path):
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(demo_model_dir).save_pretrained(tmp_path)
    assert tokenizer_fingerprint(tmp_path) == tokenizer_fingerprint(demo_model_dir)


def test_missing_tensors_are_named(demo_model_dir, tmp_path):
    from safetensors.torch import load_file, save_file

    shutil.copytree(demo_model_dir, tmp_path / "cut")
    state = load_file(str(tmp_path / "cut" / "model.safetensors"))
    del state["model.layers.3.mlp.up_proj.weight"]
    save_file(state, str(tmp_path / "cut" / "model.safetensors"), metadata={"format": "pt"})
    (problem,) = check_compatible([demo_model_dir, tmp_path / "cut"])["problems"]
    assert "lacks model.layers.3.mlp.up_proj.weight" in problem


def test_bin_only_and_adapter_dirs_are_explained(platform, demo_model_dir, tmp_path):
    (tmp_path / "old").mkdir()
    shutil.copy(demo_model_dir / "config.json", tmp_path / "old" / "config.json")
    (tmp_path / "old" / "pytorch_model.bin").write_bytes(b"\0" * 16)
    with pytest.raises(InvalidInput, match="only PyTorch .bin weights"):
        check_compatible([demo_model_dir, tmp_path / "old"])
    (tmp_path / "adapter").mkdir()
    (tmp_path / "adapter" / "adapter_config.json").write_text("{}")
    with pytest.raises(InvalidInput, match="LoRA adapter"):
        resolve_model_dir(platform, str(tmp_path / "adapter"))


def test_models_resolve_by_name_id_or_path(platform, demo_model_dir):
    from platform_core.models import register_model

    model_id = register_model(platform, demo_model_dir, name="tiny")
    assert resolve_model_dir(platform, "tiny") == demo_model_dir.resolve()
    assert resolve_model_dir(platform, str(model_id)) == demo_model_dir.resolve()
    assert resolve_model_dir(platform, str(demo_model_dir)) == demo_model_dir.resolve()
    with pytest.raises(NotFound, match="nope"):
        resolve_model_dir(platform, "nope")
    with pytest.raises(InvalidInput, match="not allowed in a path"):
        resolve_model_dir(platform, "/tmp/x;rm -rf /")


def test_findings_carry_a_code_translated_in_both_languages(demo_model_dir, misfits):
    import copy
    import pickle
    import re
    import string

    from app.i18n import STRINGS
    from platform_core.surgery.compat import REASONS, SurgeryReason

    report = check_compatible([demo_model_dir, misfits["wider"]])
    (problem,) = report["problems"]
    assert isinstance(problem, SurgeryReason) and problem.code == "shape"
    assert problem.params["name"].startswith("model.layers.0.mlp") and str(problem).startswith("different shape")
    for clone in (copy.deepcopy(problem), pickle.loads(pickle.dumps(problem))):
        assert clone == problem and clone.code == "shape" and clone.params == problem.params
    for code, english in REASONS.items():
        entry = STRINGS[f"surgery.reason.{code}"]
        assert entry["en"] == english  # the CLI's text and the English UI agree
        fields = {f for _, f, _, _ in string.Formatter().parse(english) if f}
        zh_fields = {f for _, f, _, _ in string.Formatter().parse(entry["zh"]) if f}
        assert zh_fields <= fields | {"count"}, code  # count: the tensor findings also carry the number
        zh_text = re.sub(r"\{\w+\}", "", entry["zh"])
        assert not any(word in zh_text for word in ("different", "lacks", "dtype", "the ")), code


def test_a_leading_models_folder_names_the_workspace_models(platform, demo_model_dir):
    from platform_core.surgery.output import resolve_output

    inside = platform.workspace.models / "a"
    shutil.copytree(demo_model_dir, inside)
    assert resolve_model_dir(platform, "models/a") == inside.resolve()
    assert resolve_model_dir(platform, "a") == inside.resolve()
    with pytest.raises(NotFound, match="models/nothing is neither"):
        resolve_model_dir(platform, "models/nothing")
    models = platform.workspace.models.resolve()
    assert resolve_output(platform, "models/x") == models / "x"  # not models/models/x
    assert resolve_output(platform, "x") == models / "x"
    assert resolve_output(platform, "models/group/x") == models / "group" / "x"
    with pytest.raises(InvalidInput, match="must not contain '..'"):
        resolve_output(platform, "models/../x")
    with pytest.raises(InvalidInput, match="would overwrite the input"):
        resolve_output(platform, "models/a", overwrite=True, inputs=[inside])


def test_a_refusal_carries_its_findings_for_translation(demo_model_dir, misfits):
    from platform_core.surgery.compat import require_compatible

    with pytest.raises(InvalidInput, match="cannot be merged: different architecture") as caught:
        require_compatible([demo_model_dir, misfits["llama"]])
    assert [r.code for r in caught.value.reasons] == ["architecture"]
    assert caught.value.reasons[0].params["arch_b"] == "LlamaForCausalLM"
