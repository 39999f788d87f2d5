"""The configurator page under AppTest: inputs, results in both languages, suggestions, and "apply to a new job"."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[2]


def _page(lang: str = "en") -> AppTest:
    at = AppTest.from_file(str(REPO / "app" / "main.py"), default_timeout=60)
    at.session_state["lang"] = lang
    at.run()
    at.switch_page("../pages/configurator.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_default_recommendation_renders(platform, lang):
    at = _page(lang)
    assert at.title[0].value in ("计算配置器", "Compute configurator")
    assert len(at.dataframe) == 3  # recommendation, derived counts, time parts
    assert at.get("plotly_chart")
    assert at.button(key="cfg_apply")


def test_apply_fills_the_new_job_form(platform):
    at = _page()
    at.selectbox(key="cfg_model").set_value("Qwen2.5-1.5B")
    at.selectbox(key="cfg_algo").set_value("grpo").run()
    at.number_input(key="cfg_gpus").set_value(4).run()
    assert not at.exception
    at.button(key="cfg_apply").click().run()
    prefill = at.session_state["job_prefill"]
    assert prefill["algorithm"] == "grpo" and prefill["model"] == "Qwen2.5-1.5B" and prefill["gpus_per_node"] == 4
    assert prefill["max_prompt_length"] == 512 and prefill["max_response_length"] == 1024
    assert {"train_batch_size", "ppo_mini_batch_size", "rollout_gpu_memory_utilization"} <= set(prefill)


def test_applied_recommendation_opens_the_new_job_form_on_that_model(platform, demo_model_dir):
    """A local model's recommendation (LoRA off: rank 0) fills the New job form, with the registered model chosen."""
    from platform_core.models import register_model

    register_model(platform, demo_model_dir, name="tiny")
    at = _page()
    at.selectbox(key="cfg_model").set_value(str(demo_model_dir))
    at.selectbox(key="cfg_gpu").set_value("rtx4090").run()
    at.button(key="cfg_apply").click().run()
    assert at.session_state["job_prefill"]["lora_rank"] == 0
    at.switch_page("../pages/jobs.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(box.label == "Base model" and box.value == "tiny" for box in at.selectbox)
    assert any("configurator's recommendation" in info.value for info in at.info)


def test_nothing_fits_lists_what_would(platform):
    at = _page("zh")
    at.selectbox(key="cfg_model").set_value("Qwen2.5-72B")
    at.selectbox(key="cfg_gpu").set_value("rtx4090").run()
    assert not at.exception
    assert at.error and "没有任何配置能放下" in at.error[0].value
    assert any("更多 GPU" in m.value for m in at.markdown)
    assert not at.button  # no apply button for a configuration that would OOM


def test_predict_mode_and_custom_gpu(platform, demo_model_dir):
    at = _page()
    at.text_input(key="cfg_model_dir").set_value(str(demo_model_dir))
    at.selectbox(key="cfg_gpu").set_value("custom").run()
    at.segmented_control(key="cfg_mode").set_value("predict").run()
    at.selectbox(key="cfg_strategy").set_value("zero2")
    at.number_input(key="cfg_micro").set_value(4).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(m.label == "GPU memory" and m.value == "48.0 GiB" for m in at.metric)
    assert at.subheader[0].value == "Configuration"


def test_bad_local_directory_shows_an_error(platform, tmp_path):
    at = _page()
    at.text_input(key="cfg_model_dir").set_value(str(tmp_path / "missing")).run()
    assert not at.exception and "no such model directory" in at.error[0].value


def test_predicted_configuration_that_does_not_fit(platform):
    at = _page()
    at.segmented_control(key="cfg_mode").set_value("predict").run()
    at.selectbox(key="cfg_strategy").set_value("ddp").run()
    assert not at.exception
    assert "does not fit" in at.error[0].value and not at.button


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_predicted_rollout_that_cannot_load_the_weights(platform, lang):
    """vLLM at 0.4 of an RTX 5090 cannot hold Qwen2.5-7B's weights: the page says so with the numbers, no apply."""
    at = _page(lang)
    at.selectbox(key="cfg_model").set_value("Qwen2.5-7B")
    at.selectbox(key="cfg_gpu").set_value("rtx5090")
    at.selectbox(key="cfg_algo").set_value("grpo").run()
    at.number_input(key="cfg_lora").set_value(32)
    at.segmented_control(key="cfg_mode").set_value("predict").run()
    at.selectbox(key="cfg_offload").set_value("all")
    at.selectbox(key="cfg_precision").set_value("bf16")
    at.slider(key="cfg_gmu").set_value(0.4).run()
    assert not at.exception, [e.value for e in at.exception]
    errors = " ".join(e.value for e in at.error)
    assert "0.4" in errors and "14.19" in errors and "0.55" in errors
    assert ("cannot hold" in errors) if lang == "en" else ("装不下" in errors)
    assert "cfg_apply" not in [b.key for b in at.button]
