"""The memory model against real tensors on CPU: state bytes after an optimizer step, saved activations, logits."""

from __future__ import annotations

import pytest
import torch

from platform_core.compute.architectures import architecture_from_config, preset
from platform_core.compute.gpus import get_gpu
from platform_core.compute.memory import (
    LOGITS,
    GiB,
    Plan,
    activation_bytes_per_token,
    estimate_memory,
    layer_activation_bytes,
    logits_bytes_per_token,
    model_states,
)
from platform_core.errors import InvalidInput

TINY = {
    "model_type": "qwen2",
    "hidden_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "intermediate_size": 256,
    "vocab_size": 512,
    "tie_word_embeddings": False,
}


def _model(config: dict, dtype: torch.dtype):
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(AutoConfig.for_model(**config), attn_implementation="sdpa")
    return model.to(dtype).train()


def _bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def _one_step(model) -> dict[str, int]:
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-3)
    ids = torch.randint(0, TINY["vocab_size"], (2, 16))
    model(input_ids=ids, labels=ids).loss.backward()
    optimizer.step()
    state = [v for s in optimizer.state.values() for v in s.values() if torch.is_tensor(v)]
    return {
        "parameters": _bytes(model.parameters()),
        "gradients": _bytes(p.grad for p in params),
        "optimizer": _bytes(state),
    }


def _predicted(config: dict, **plan) -> dict[str, int]:
    states = model_states(architecture_from_config(config, "tiny"), Plan(algorithm="sft", sharding="ddp", **plan))
    return {"parameters": states.parameters, "gradients": states.gradients, "optimizer": states.optimizer}


def test_fp32_weights_and_adamw_state_are_exact():
    """fp32 weights with bf16 compute (torch AMP) keep 4 + 4 + 8 bytes per parameter (+ a step counter each)."""
    assert _predicted(TINY, precision="fp32-master") == _one_step(_model(TINY, torch.float32))


def test_pure_bf16_is_exact():
    assert _predicted(TINY, precision="bf16") == _one_step(_model(TINY, torch.bfloat16))


def test_lora_on_a_bf16_base_is_exact():
    """PEFT keeps adapters in fp32 on a bf16 base: base 2P, adapters 4 + 4 + 8 bytes each."""
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(_model(TINY, torch.bfloat16), LoraConfig(r=8, target_modules="all-linear"))
    assert _predicted(TINY, precision="fp32-master", lora_rank=8) == _one_step(model)


def test_lora_adapters_stay_fp32_under_a_bf16_actor():
    """The bf16-actor candidate (precision bf16, LoRA): PEFT upcasts the adapters to fp32, so they cost 4 + 4 + 8
    bytes each, not 2 + 2 + 4 (verl loads the actor with model_dtype=bfloat16 and then calls get_peft_model)."""
    from peft import LoraConfig, get_peft_model

    peft = get_peft_model(_model(TINY, torch.bfloat16), LoraConfig(r=8, target_modules="all-linear"))
    assert _predicted(TINY, precision="bf16", lora_rank=8) == _one_step(peft)
    # torchtune-style adapters built in the model dtype: the 2 + 2 + 4 figure, still available explicitly
    bf16_adapters = get_peft_model(
        _model(TINY, torch.bfloat16), LoraConfig(r=8, target_modules="all-linear"), autocast_adapter_dtype=False
    )
    assert _predicted(TINY, precision="bf16", lora_rank=8, lora_fp32_adapters=False) == _one_step(bf16_adapters)


def test_rollout_that_cannot_load_the_weights_does_not_fit():
    """vLLM at 0.4 × 31.4 GiB = 12.6 GiB cannot hold Qwen2.5-7B's 14.2 GiB of bf16 weights: fits is False even though
    the peak (offload frees the rollout phase) is far below the GPU, and the reason names the numbers and the fix."""
    arch, gpu = preset("Qwen2.5-7B"), get_gpu("rtx5090")
    plan = Plan(
        algorithm="grpo",
        seq_len=4096,
        prompt_len=1365,
        response_len=2731,
        lora_rank=32,
        offload="all",
        precision="bf16",
        token_budget=4096,
        rollout_gpu_memory_utilization=0.4,
    )
    est = estimate_memory(arch, gpu, plan)
    assert est.peak_phase.name != "rollout" and est.phases["rollout"].peak < gpu.memory_bytes
    assert not est.fits and "rollout_kv_too_small" in est.notes
    (problem,) = est.problems
    assert problem["kind"] == "rollout_kv_too_small" and problem["kv_cache_tokens"] == 0
    assert problem["rollout_gib"] == pytest.approx(12.56, abs=0.01) and problem["weights_gib"] == pytest.approx(14.19)
    assert problem["needed_tokens"] == 4096 and problem["min_gpu_memory_utilization"] == 0.55
    assert "0.4 × 31.4 GiB = 12.6 GiB" in problem["message"] and "14.2 GiB" in problem["message"]
    assert "at least 0.55" in problem["message"]
    assert est.to_dict()["fits"] is False and est.to_dict()["problems"] == [problem]
    # the suggested fraction is enough: one full sequence fits, nothing else changed
    enough = estimate_memory(arch, gpu, Plan(**{**plan.__dict__, "rollout_gpu_memory_utilization": 0.55}))
    assert not enough.problems and enough.fits
    # just below it is not
    short = estimate_memory(arch, gpu, Plan(**{**plan.__dict__, "rollout_gpu_memory_utilization": 0.5}))
    assert short.problems and 0 < short.problems[0]["kv_cache_tokens"] < 4096 and not short.fits
    # with 2 GPUs the reason also offers tensor parallelism, at the fraction that holds half the weights per GPU
    two = estimate_memory(arch, gpu, Plan(**{**plan.__dict__, "gpus_per_node": 2}))
    assert two.problems[0]["tp_options"] == {"2": 0.3}
    tp2 = Plan(**{**plan.__dict__, "gpus_per_node": 2, "rollout_tp": 2, "rollout_gpu_memory_utilization": 0.3})
    assert not estimate_memory(arch, gpu, tp2).problems


def test_tied_embeddings_are_exact():
    tied = {**TINY, "tie_word_embeddings": True}
    assert _predicted(tied, precision="bf16") == _one_step(_model(tied, torch.bfloat16))


def test_sharding_divides_the_states():
    arch = preset("Qwen2.5-7B")
    p = arch.total_params
    fsdp = model_states(arch, Plan(algorithm="sft", sharding="fsdp", gpus_per_node=8))
    assert fsdp.total == pytest.approx(16 * p / 8, rel=1e-6)  # verl: fp32 params, grads, AdamW = 16P/N
    zero2 = model_states(arch, Plan(algorithm="sft", sharding="zero2", gpus_per_node=8))
    assert zero2.total == pytest.approx(2 * p + 18 * p / 8, rel=1e-6)  # DeepSpeed's estimator
    zero3 = model_states(arch, Plan(algorithm="sft", sharding="zero3", gpus_per_node=8))
    assert zero3.total == pytest.approx(18 * p / 8, rel=1e-6)
    offloaded = model_states(arch, Plan(algorithm="sft", sharding="zero3", gpus_per_node=8, offload="optimizer"))
    assert offloaded.total == pytest.approx(2 * p / 8, rel=1e-6) and offloaded.cpu > 0
    ddp = model_states(arch, Plan(algorithm="sft", sharding="ddp", precision="bf16"))
    assert ddp.step_transient == 2 * p  # foreach AdamW's temporary (memory.md §1.3)


def _saved_activation_bytes(config: dict, tokens: int, checkpointing: bool, lora_rank: int = 0) -> int:
    """Bytes of the distinct storages autograd saves for backward in the decoder stack (parameters excluded)."""
    model = _model(config, torch.bfloat16)
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if lora_rank:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=lora_rank, target_modules="all-linear")).base_model.model
    seen: dict[int, int] = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return tensor

    ids = torch.randint(0, config["vocab_size"], (1, tokens))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model.model(input_ids=ids, use_cache=False)
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    return sum(size for ptr, size in seen.items() if ptr not in params)


@pytest.mark.parametrize(("checkpointing", "lora_rank"), [(False, 0), (True, 0), (False, 8)])
def test_activation_bytes_per_layer_match_what_autograd_saves(checkpointing, lora_rank):
    """memory.md §2.4: 20h + 4kvd + 8i + 4a + 8 per token per layer; 2h with checkpointing; LoRA +16h + 2i + 28r."""
    tokens = 64
    one = _saved_activation_bytes({**TINY, "num_hidden_layers": 1}, tokens, checkpointing, lora_rank)
    two = _saved_activation_bytes({**TINY, "num_hidden_layers": 2}, tokens, checkpointing, lora_rank)
    arch = architecture_from_config({**TINY, "num_hidden_layers": 1}, "tiny")
    per_layer = activation_bytes_per_token(arch, checkpointing, lora_rank) - 8 * arch.hidden_size
    assert (two - one) / tokens == per_layer
    if not checkpointing and not lora_rank:
        assert per_layer == layer_activation_bytes(arch)


def test_hf_loss_keeps_six_bytes_per_vocab_entry():
    """transformers' ForCausalLMLoss keeps the bf16 logits (2V) and the fp32 log-softmax (4V) per token."""

    def kept(vocab: int, tokens: int = 32) -> int:
        model = _model({**TINY, "num_hidden_layers": 1, "vocab_size": vocab}, torch.bfloat16)
        seen: dict[int, int] = {}

        def pack(tensor):
            seen[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
            return tensor

        ids = torch.randint(0, vocab, (1, tokens))
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = model(input_ids=ids, labels=ids)
        seen.setdefault(out.logits.untyped_storage().data_ptr(), out.logits.untyped_storage().nbytes())
        params = {p.untyped_storage().data_ptr() for p in model.parameters()}
        return sum(size for ptr, size in seen.items() if ptr not in params)

    per_entry = (kept(4096) - kept(512)) / (32 * (4096 - 512))
    arch = architecture_from_config({**TINY, "vocab_size": 1}, "tiny")
    assert per_entry == logits_bytes_per_token(arch, "hf")[0]


def test_rl_phases_and_offload():
    arch, gpu = preset("Qwen2.5-7B"), get_gpu("h100")
    plan = Plan(algorithm="grpo", seq_len=1536, prompt_len=512, response_len=1024, gpus_per_node=8, token_budget=24000)
    est = estimate_memory(arch, gpu, plan)
    assert set(est.phases) == {"train", "rollout", "log_prob"}
    rollout = est.phases["rollout"].parts
    assert rollout["rollout_engine"] == int(0.5 * gpu.memory_bytes)
    assert rollout["parameters"] + rollout["optimizer"] == pytest.approx(12 * arch.total_params / 8, rel=1e-3)
    offloaded = estimate_memory(arch, gpu, Plan(**{**plan.__dict__, "offload": "all"}))
    # verl's offload frees the rollout phase but the update loads everything back
    assert offloaded.phases["rollout"].parts["parameters"] == 0
    assert offloaded.phases["train"].peak == est.phases["train"].peak
    assert "verl_offload_rollout_only" in offloaded.notes
    ppo = estimate_memory(arch, gpu, Plan(**{**plan.__dict__, "algorithm": "ppo"}))
    assert "critic_update" in ppo.phases and ppo.phases["train"].parts["critic"] > 0


def test_more_tokens_more_memory_and_checkpointing_saves():
    arch, gpu = preset("Llama-3-8B"), get_gpu("a100-80g")
    base = Plan(algorithm="sft", seq_len=4096, gpus_per_node=8, gradient_checkpointing=False)
    small = estimate_memory(arch, gpu, base).peak
    big = estimate_memory(arch, gpu, Plan(**{**base.__dict__, "micro_batch": 2})).peak
    checkpointed = estimate_memory(arch, gpu, Plan(**{**base.__dict__, "gradient_checkpointing": True})).peak
    fused = estimate_memory(arch, gpu, Plan(**{**base.__dict__, "loss_kernel": "fused"})).peak
    assert big > small > checkpointed and fused < small
    assert (big - small) / GiB == pytest.approx(
        1.08 * 4096 * (activation_bytes_per_token(arch, False) + 3 * arch.vocab_size) / GiB, rel=0.01
    )


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"sharding": "ddp", "offload": "optimizer"}, "offload"),
        ({"sharding": "zero2", "offload": "all"}, "offload"),
        ({"sharding": "nvlink"}, "sharding"),
        ({"micro_batch": 0}, "micro_batch"),
        ({"quantization": "nf4"}, "quantization"),
    ],
)
def test_impossible_plans_name_the_field(changes, field):
    with pytest.raises(InvalidInput, match=field):
        estimate_memory(preset("Qwen2.5-0.5B"), get_gpu("h100"), Plan(algorithm="sft", **changes))


def test_trl_dpo_logits_under_accelerate_amp():
    """The platform's DPO (trl_runner: bf16 model, TrainingArguments bf16=True) gets fp32 logits from accelerate's
    convert_outputs_to_fp32; TRL's selective_log_softmax then keeps 4V and peaks near 16V per token through backward
    ("trl_amp" in LOGITS). Measured here by tracking every live tensor's storage (bf16 logits from a [V, 64] head)."""
    import weakref

    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    trl_utils = pytest.importorskip("trl.trainer.utils")

    class Live(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.live, self.now, self.peak = {}, 0, 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in tree_flatten(out)[0]:
                if isinstance(t, torch.Tensor):
                    storage = t.untyped_storage()
                    key = storage.data_ptr()
                    if key not in self.live and storage.nbytes():
                        self.live[key] = storage.nbytes()
                        self.now += storage.nbytes()
                        self.peak = max(self.peak, self.now)
                        weakref.finalize(storage, lambda k=key: setattr(self, "now", self.now - self.live.pop(k, 0)))
            return out

    rows, tokens, vocab = 2, 256, 4096
    hidden = torch.randn(rows, tokens, 64, dtype=torch.bfloat16)
    head = torch.randn(vocab, 64, dtype=torch.bfloat16, requires_grad=True)
    labels = torch.randint(0, vocab, (rows, tokens - 1))
    mode = Live()
    with mode:
        outputs = {"logits": (hidden @ head.t()).float()}  # what accelerate's wrapper returns
        logps = trl_utils.selective_log_softmax(outputs["logits"][..., :-1, :], labels)
        del outputs
        kept = mode.now
        logps.sum().backward()
    unit = rows * tokens * vocab
    model_kept, model_peak, _ = LOGITS["trl_amp"]
    assert kept / unit == pytest.approx(model_kept, abs=0.4)
    assert mode.peak / unit == pytest.approx(model_peak, abs=0.5)
