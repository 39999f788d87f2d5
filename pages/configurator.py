"""Compute configurator: will it fit, with which settings, and how long will it take (user's guide §4)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app.i18n import t
from app.state import get_platform_cached
from app.widgets import go_to, show_error
from platform_core.compute.architectures import preset_names
from platform_core.compute.gpus import GPUS
from platform_core.compute.memory import PARTS
from platform_core.compute.recommend import configure, parse_request
from platform_core.errors import PlatformError
from platform_core.models import list_models

platform = get_platform_cached()
st.title(t("configurator.title"))
st.caption(t("configurator.intro"))

ALGORITHMS = ["sft", "sft-lora", "dpo", "grpo", "ppo"]
RL = ("grpo", "ppo")

# -- inputs --------------------------------------------------------------------------------------------------------
local_models = [m for m in list_models(platform, "local") if m.get("exists")]
model_options = preset_names() + [m["path"] for m in local_models]
model_labels = {name: name for name in preset_names()}
model_labels.update({m["path"]: t("configurator.model.local", name=m["name"]) for m in local_models})
gpu_options = list(GPUS) + ["custom"]
gpu_labels = {key: gpu.name for key, gpu in GPUS.items()}
gpu_labels["custom"] = t("configurator.gpu.custom")
algo_labels = {a: t(f"configurator.algo.{a}") for a in ALGORITHMS}

c1, c2, c3 = st.columns([3, 2, 2])
model = c1.selectbox(
    t("configurator.model"),
    model_options,
    index=model_options.index("Qwen2.5-7B"),
    format_func=model_labels.get,
    key="cfg_model",
)
model_dir = c1.text_input(t("configurator.model.dir"), key="cfg_model_dir", help=t("configurator.model.dir.help"))
gpu = c2.selectbox(
    t("configurator.gpu"), gpu_options, index=gpu_options.index("h100"), format_func=gpu_labels.get, key="cfg_gpu"
)
custom_memory = None
if gpu == "custom":
    custom_memory = c2.number_input(t("configurator.gpu.memory"), 1.0, 4096.0, 48.0, key="cfg_gpu_memory")
gpus_per_node = c3.number_input(t("configurator.gpus_per_node"), 1, 64, 1, key="cfg_gpus")
nodes = c3.number_input(t("configurator.nodes"), 1, 1024, 1, key="cfg_nodes")

c4, c5, c6 = st.columns([2, 2, 2])
algorithm = c4.selectbox(t("configurator.algorithm"), ALGORITHMS, format_func=algo_labels.get, key="cfg_algo")
lengths: dict[str, int] = {}
if algorithm in RL:
    lengths["prompt_len"] = c5.number_input(t("configurator.prompt_len"), 16, 1_048_576, 512, 128, key="cfg_prompt")
    lengths["response_len"] = c6.number_input(
        t("configurator.response_len"), 16, 1_048_576, 1024, 128, key="cfg_response"
    )
    rollout_n = c4.number_input(t("configurator.rollout_n"), 1, 256, 5 if algorithm == "grpo" else 1, key="cfg_n")
else:
    lengths["seq_len"] = c5.number_input(t("configurator.seq_len"), 16, 1_048_576, 2048, 256, key="cfg_seq")
    rollout_n = None
lora_rank = c6.number_input(
    t("configurator.lora_rank"), 0, 4096, 0, 8, key="cfg_lora", help=t("configurator.lora_rank.help")
)

with st.expander(t("configurator.advanced")):
    a1, a2, a3, a4 = st.columns(4)
    global_batch = a1.number_input(
        t("configurator.global_batch"), 0, 1_000_000, 0, key="cfg_global", help=t("configurator.auto.help")
    )
    samples = a2.number_input(t("configurator.samples"), 1, 100_000_000, 10_000, 1000, key="cfg_samples")
    epochs = a3.number_input(t("configurator.epochs"), 0.1, 1000.0, 1.0, 0.5, key="cfg_epochs")
    mfu = a4.number_input(t("configurator.mfu"), 0.0, 1.0, 0.0, 0.05, key="cfg_mfu", help=t("configurator.auto.help"))
    reward_model = algorithm == "ppo" and st.checkbox(t("configurator.reward_model"), key="cfg_rm")

mode_labels = {"recommend": t("configurator.mode.recommend"), "predict": t("configurator.mode.predict")}
mode = st.segmented_control(
    t("configurator.mode"), list(mode_labels), format_func=mode_labels.get, default="recommend", key="cfg_mode"
)
concrete: dict = {}
if mode == "predict":
    on_off = {True: t("configurator.on"), False: t("configurator.off")}
    p1, p2, p3, p4 = st.columns(4)
    concrete["strategy"] = p1.selectbox(
        t("configurator.strategy"), ["fsdp", "ddp", "zero1", "zero2", "zero3"], key="cfg_strategy"
    )
    concrete["micro_batch"] = p2.number_input(t("configurator.micro_batch"), 1, 4096, 1, key="cfg_micro")
    concrete["gradient_checkpointing"] = p3.selectbox(
        t("configurator.gradient_checkpointing"), [True, False], format_func=on_off.get, key="cfg_gc"
    )
    concrete["offload"] = p4.selectbox(t("configurator.offload"), ["none", "optimizer", "all"], key="cfg_offload")
    q1, q2, q3, q4 = st.columns(4)
    concrete["precision"] = q1.selectbox(
        t("configurator.precision"), ["fp32-master", "bf16", "fp16"], key="cfg_precision"
    )
    concrete["fused_ce"] = q2.selectbox(
        t("configurator.fused_ce"), [False, True], format_func=on_off.get, key="cfg_fused"
    )
    concrete["packing"] = q3.selectbox(
        t("configurator.packing"), [False, True], format_func=on_off.get, key="cfg_packing"
    )
    token_budget = q4.number_input(
        t("configurator.token_budget"), 0, 10_000_000, 0, 1024, key="cfg_budget", help=t("configurator.auto.help")
    )
    if token_budget:
        concrete["token_budget"] = token_budget
    if algorithm in RL:
        r1, r2 = st.columns(2)
        concrete["rollout_gpu_memory_utilization"] = r1.slider(
            t("configurator.gmu"), 0.1, 0.95, 0.5, 0.05, key="cfg_gmu"
        )
        concrete["rollout_tp"] = r2.selectbox(t("configurator.rollout_tp"), [1, 2, 4, 8], key="cfg_tp")

request = {
    "model": model_dir.strip() or model,
    "gpu": gpu,
    "gpu_memory_gib": custom_memory,
    "gpus_per_node": int(gpus_per_node),
    "nodes": int(nodes),
    "algorithm": algorithm,
    **{k: int(v) for k, v in lengths.items()},
    "rollout_n": int(rollout_n) if rollout_n else None,
    "lora_rank": int(lora_rank) or None,
    "global_batch_size": int(global_batch) or None,
    "samples": int(samples),
    "epochs": float(epochs),
    "mfu": float(mfu) or None,
    "reward_model": bool(reward_model),
    **concrete,
}
try:
    result = configure(parse_request({k: v for k, v in request.items() if v is not None}))
except PlatformError as exc:
    show_error(exc)
    st.stop()

# -- results -------------------------------------------------------------------------------------------------------
st.header(t("configurator.result"))
if result["fits"]:
    st.badge(t("configurator.fits"), icon=":material/check_circle:", color="green")
else:
    st.badge(t("configurator.does_not_fit"), icon=":material/error:", color="red")
m1, m2, m3, m4 = st.columns(4)
m1.metric(t("configurator.peak"), f"{result['peak_gib_per_gpu']:.1f} GiB")
m2.metric(t("configurator.usable"), f"{result['usable_gib_per_gpu']:.1f} GiB")
m3.metric(t("configurator.peak_phase"), t(f"configurator.phase.{result['peak_phase']}"))
params = result["model"]["total_params"]
m4.metric(t("configurator.params"), f"{params / 1e9:.2f} B" if params >= 1e8 else f"{params / 1e6:.1f} M")

part_labels = {part: t(f"configurator.part.{part}") for part in PARTS}
phases = result["phases"]
phase_names = [t(f"configurator.phase.{name}") for name in phases]
figure = go.Figure()
for part in PARTS:
    values = [phase["breakdown"].get(part, 0.0) for phase in phases.values()]
    if any(values):
        figure.add_bar(name=part_labels[part], x=phase_names, y=values, hovertemplate="%{y:.2f} GiB")
figure.add_hline(
    y=result["usable_gib_per_gpu"],
    line_dash="dash",
    line_color="red",
    annotation_text=t("configurator.usable"),
)
figure.update_layout(barmode="stack", yaxis_title="GiB", height=420, margin={"t": 30, "b": 10}, legend_title=None)
st.plotly_chart(figure, width="stretch", key="cfg_chart")
for note in result.get("notes", []):
    st.info(t(f"configurator.note.{note}"))

yes_no = {True: t("configurator.yes"), False: t("configurator.no")}


def show(value):
    if isinstance(value, bool):
        return yes_no[value]
    return "—" if value is None else str(value)


if result["fits"]:
    rec = result["recommendation"]
    st.subheader(t("configurator.recommendation") if result["mode"] == "recommend" else t("configurator.configuration"))
    rows = [
        ("global_batch_size", rec["global_batch_size"]),
        ("micro_batch_size_per_gpu", rec["micro_batch_size_per_gpu"]),
        ("sharding", f"{rec['sharding']} (ZeRO-{rec['zero_stage']})"),
        ("memory", f"{result['peak_gib_per_gpu']:.1f} / {result['usable_gib_per_gpu']:.1f} GiB"),
        ("lora", f"{show(rec['lora'])}" + (f" (r={rec['lora_rank']})" if rec["lora"] else "")),
        ("gradient_checkpointing", rec["gradient_checkpointing"]),
        ("offload", rec["offload"]),
        ("precision", rec["precision"]),
        ("fused_ce", rec["fused_ce"]),
        ("max_token_len_per_gpu", rec.get("max_token_len_per_gpu")),
    ]
    if algorithm in RL:
        rows += [
            ("ppo_mini_batch_size", rec["ppo_mini_batch_size"]),
            ("rollout_n", rec["rollout_n"]),
            ("log_prob_max_token_len_per_gpu", rec.get("log_prob_max_token_len_per_gpu")),
            *(
                [("critic_max_token_len_per_gpu", rec.get("critic_max_token_len_per_gpu"))]
                if algorithm == "ppo"
                else []
            ),
            ("rollout_gpu_memory_utilization", rec["rollout_gpu_memory_utilization"]),
            ("rollout_tensor_parallel_size", rec["rollout_tensor_parallel_size"]),
        ]
    st.dataframe(
        pd.DataFrame(
            {
                t("configurator.col.item"): [t(f"configurator.rec.{key}") for key, _ in rows],
                t("configurator.col.value"): [show(value) for _, value in rows],
            }
        ),
        hide_index=True,
        width="stretch",
    )

    st.subheader(t("configurator.derived"))
    derived = result["derived"]
    st.dataframe(
        pd.DataFrame(
            {
                t("configurator.col.item"): [t(f"configurator.derived.{key}") for key in derived],
                t("configurator.col.value"): [str(value) for value in derived.values()],
                t("configurator.col.meaning"): [t(f"configurator.derived.{key}.help") for key in derived],
            }
        ),
        hide_index=True,
        width="stretch",
    )

    st.subheader(t("configurator.time"))
    est = result["estimate"]
    e1, e2, e3 = st.columns(3)
    e1.metric(t("configurator.time.step"), f"{est['seconds_per_step']:.1f} s")
    e2.metric(
        t("configurator.time.total"),
        f"{est['hours_total']:.2f} h",
        help=t("configurator.time.steps", steps=est["total_steps"]),
    )
    e3.metric(t("configurator.time.mfu"), f"{est['mfu']:.2f}")
    st.caption(t("configurator.time.basis", mfu=est["mfu"], tflops=est["gpu_bf16_tflops"]))
    st.dataframe(
        pd.DataFrame(
            {
                t("configurator.col.item"): [t(f"configurator.time.part.{part}") for part in est["parts"]],
                t("configurator.col.seconds"): list(est["parts"].values()),
            }
        ),
        hide_index=True,
        width="stretch",
    )
    if st.button(t("configurator.apply"), type="primary", key="cfg_apply", help=t("configurator.apply.help")):
        st.session_state["job_prefill"] = dict(result["job_prefill"])
        go_to("jobs.py")
elif result["mode"] == "predict":
    if result["peak_gib_per_gpu"] > result["usable_gib_per_gpu"] or not result.get("problems"):
        st.error(
            t("configurator.predict_does_not_fit", peak=result["peak_gib_per_gpu"], usable=result["usable_gib_per_gpu"])
        )
    for problem in result.get("problems", []):
        fixes = []
        if problem["min_gpu_memory_utilization"] is not None:
            fixes.append(t("configurator.problem.fix_gmu", gmu=problem["min_gpu_memory_utilization"]))
        fixes += [t("configurator.problem.fix_tp", tp=tp, gmu=gmu) for tp, gmu in problem["tp_options"].items()]
        fix = " ".join(fixes) or t("configurator.problem.fix_none")
        st.error(t(f"configurator.problem.{problem['kind']}", **{**problem, "fix": fix}))
else:
    st.error(t("configurator.nothing_fits"))
    for item in result["suggestions"]:
        key = f"configurator.suggest.{item['kind']}" + ("_lora" if item.get("lora") else "")
        fields = {**item, "gpu": GPUS[item["gpu"]].name if "gpu" in item else ""}
        st.markdown("- " + t(key, **fields))
    if not result["suggestions"]:
        st.markdown("- " + t("configurator.suggest.none"))
