"""The surgery page in a real Streamlit run (AppTest): compatibility shown before a merge, weights, selection."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from platform_core.models import register_model

REPO = Path(__file__).resolve().parents[2]


def _page(lang: str) -> AppTest:
    at = AppTest.from_file(str(REPO / "app" / "main.py"), default_timeout=60)
    at.session_state["lang"] = lang
    at.run()
    at.switch_page("../pages/surgery.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _texts(at: AppTest) -> str:
    return "\n".join(e.value for kind in ("success", "error", "info", "caption") for e in getattr(at, kind))


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_merge_form_shows_compatibility_before_running(platform, variants, misfits, lang):
    register_model(platform, variants["a"], name="a")
    register_model(platform, variants["b"], name="b")
    register_model(platform, misfits["wider"], name="wider")
    at = _page(lang)
    at.selectbox(key="merge_method").set_value("linear").run()
    at.multiselect(key="merge_registered").set_value([str(variants["a"]), str(variants["b"])]).run()
    assert not at.exception, [e.value for e in at.exception]
    expected = "模型兼容" if lang == "zh" else "Compatible: same architecture"
    assert any(expected in s.value for s in at.success)
    at.multiselect(key="merge_registered").set_value([str(variants["a"]), str(misfits["wider"])]).run()
    # the reason is translated from its code and values (English text only in the English UI)
    errors = "\n".join(e.value for e in at.error)
    if lang == "zh":
        assert "model.layers.0.mlp" in errors and "的形状不同" in errors and "different shape" not in errors
    else:
        assert "different shape for model.layers.0.mlp" in errors
    assert platform.store.count("tasks") == 0


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_dtype_note_is_shown_in_the_page_language(platform, variants, tmp_path, lang):
    import torch
    from transformers import AutoModelForCausalLM

    half = tmp_path / "a-bf16"
    AutoModelForCausalLM.from_pretrained(variants["a"], dtype=torch.bfloat16).save_pretrained(half)
    shutil.copy(variants["a"] / "tokenizer.json", half / "tokenizer.json")
    register_model(platform, variants["b"], name="b")
    register_model(platform, half, name="a-bf16")
    at = _page(lang)
    at.selectbox(key="merge_method").set_value("linear").run()
    at.multiselect(key="merge_registered").set_value([str(variants["b"]), str(half)]).run()
    assert not at.exception, [e.value for e in at.exception]
    captions = "\n".join(c.value for c in at.caption)
    if lang == "zh":
        assert "的精度是 F32" in captions and "BF16" in captions and "takes the first" not in captions
    else:
        assert "is F32 and" in captions and "is BF16; the result takes the first's dtype" in captions


def test_average_and_checkpoint_tabs_show_weights_and_the_pick(platform, fine_tunes, tmp_path):
    root = tmp_path / "run" / "checkpoints"
    for step, name in ((10, "base"), (20, "ft1"), (30, "ft2")):
        shutil.copytree(fine_tunes[name], root / f"global_step_{step}")
    lines = [
        {"step": 10, "data": {"val/loss": 2.0}},
        {"step": 20, "data": {"val/loss": 1.5}},
        {"step": 30, "data": {"val/loss": 1.7}},
    ]
    (root / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    at = _page("en")
    at.text_input(key="avg_root").set_value(str(root)).run()
    at.radio(key="avg_mode").set_value("ema").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.multiselect(key="avg_steps").value == [10, 20, 30]
    at.text_input(key="ckpt_root").set_value(str(root)).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Step 20 has the lowest val/loss: 1.5" in s.value for s in at.success)
    strategy = f"ckpt_strategy_{root}"
    at.radio(key=strategy).set_value("highest_reward").run()
    assert any("no checkpoint has a mean reward" in w.value for w in at.warning) and not at.error
    at.radio(key=strategy).set_value("last").run()
    assert any("Step 30 is the last checkpoint" in s.value for s in at.success)
    # checkpoints with no validation loss and no reward (a DPO run): the page opens on "last", not on a complaint
    (root / "metrics.jsonl").write_text(json.dumps({"step": 30, "data": {"train/loss": 0.7}}) + "\n")
    other = tmp_path / "dpo" / "checkpoints"
    shutil.copytree(root, other)
    at.text_input(key="ckpt_root").set_value(str(other)).run()
    assert at.radio(key=f"ckpt_strategy_{other}").value == "last"
    assert not at.warning and not at.error
    assert any("Step 30 is the last checkpoint" in s.value for s in at.success)


def test_the_default_output_name_is_a_free_one(platform):
    """A second merge with the defaults must not collide with the first one's output."""
    at = _page("en")
    assert at.text_input(key="merge_slerp_out").value == "merged-slerp"
    taken = platform.workspace.models / "merged-slerp"
    taken.mkdir(parents=True)
    (taken / "config.json").write_text("{}")
    assert _page("en").text_input(key="merge_slerp_out").value == "merged-slerp-2"
