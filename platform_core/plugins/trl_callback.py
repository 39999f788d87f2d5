"""PlatformCallback: one TrainerCallback for every TRL trainer (SFT, DPO, GRPO, Reward, experimental PPO).

Shipped next to runs like the other plugins: imports only torch, transformers and the standard library.

Environment variables (constructor arguments override them):
  PLATFORM_METRICS_FILE    JSONL, one line per logging step: {"step": N, "data": {metric: value}}  (NaN/Inf -> null)
                           (the end-of-training summary -- train_runtime, train_loss, ... -- goes to <file>.summary.jsonl
                            so that the main file holds each step exactly once)
  PLATFORM_CONTROL_FILE    JSON polled at every step end: {"action": "pause"} (checkpoint + stop),
                           {"action": "stop"} (stop, no checkpoint), {"action": "save"} (checkpoint, keep going).
                           A request is consumed by renaming the file to <file>.consumed (atomic), and an
                           acknowledgement {"action", "step", "checkpoint", "time"} is written to <file>.ack.
  PLATFORM_GRADNORM_FILE   JSONL: {"step": N, "layers": [...], "norms": [...], "total": x, "where": hook}
  PLATFORM_GRADNORM_EVERY  record every N optimizer steps (default 1)

Gradient norms are taken between backward and optimizer.step:
  * Trainer-based loops (DPO, GRPO, Reward, SFT ...) fire `on_pre_optimizer_step` right before `optimizer.step()`
    (transformers 5.10 trainer.py: after clip_grad_norm_, so the gradients are already clipped -- all layers share the
    same clip factor, the Trainer's own `grad_norm` metric is the pre-clip total).
  * trl.experimental.ppo.PPOTrainer has its own loop that never fires `on_pre_optimizer_step`; for it the callback
    registers a torch `Optimizer.register_step_pre_hook` on the optimizer passed to callbacks (PPO does not clip).
    In Trainer-based loops the callback's `optimizer` kwarg is None (transformers 5.10 never sets it), so only the
    callback event is used there.
  * attach_preclip_gradnorms(trainer) (optional) records unclipped norms by wrapping Trainer._clip_grad_norm.
  * FSDP2: DTensor grads are summed locally and all-reduced (every rank runs the hook); only rank 0 writes.
PPO's loop also ignores `control.should_training_stop`; construct with `raise_on_pause=True` and catch
`TrainingPaused` around `trainer.train()` (raised from on_save, i.e. after the checkpoint is written).
"""

from __future__ import annotations

import json
import math
import os
import re
import time

import torch
from transformers import TrainerCallback


class TrainingPaused(Exception):
    """Raised (only with raise_on_pause=True) after the pause checkpoint has been written."""


def _clean(v):
    if isinstance(v, torch.Tensor):
        if v.numel() != 1:
            return None
        v = v.item()
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):  # numpy scalars
        try:
            v = v.item()
        except Exception:
            return None
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if v is None:
        return None
    return None  # strings / lists / tables are not metrics


_LAYER_RE = re.compile(r"^(.*?layers\.\d+)\.")
_WRAPPER_PREFIXES = ("policy.", "value_model.")  # trl PPO PolicyAndValueWrapper


def layer_group(name: str) -> str:
    m = _LAYER_RE.match(name)
    if m:
        return m.group(1)  # e.g. model.layers.0 / policy.model.layers.1 / base_model.model.model.layers.0
    prefix = next((p for p in _WRAPPER_PREFIXES if name.startswith(p)), "")
    if "embed_tokens" in name or "wte" in name or "word_embeddings" in name:
        return prefix + "embedding"
    return prefix + "head/rest"  # lm_head (if untied), final norm, reward/value `score` head


def _from_rank_zero(value):
    """`value` as rank 0 has it, on every rank of a multi-process (torchrun) run; unchanged in a single process."""
    try:
        import torch.distributed as dist
    except ImportError:
        return value
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


class PlatformCallback(TrainerCallback):
    def __init__(
        self, metrics_path=None, control_path=None, gradnorm_path=None, gradnorm_every=None, raise_on_pause=False
    ):
        self.metrics_path = metrics_path or os.environ.get("PLATFORM_METRICS_FILE")
        self.control_path = control_path or os.environ.get("PLATFORM_CONTROL_FILE")
        self.gradnorm_path = gradnorm_path or os.environ.get("PLATFORM_GRADNORM_FILE")
        self.gradnorm_every = int(gradnorm_every or os.environ.get("PLATFORM_GRADNORM_EVERY", "1"))
        self.raise_on_pause = raise_on_pause
        self._pause_pending = False
        self._last_gn_step = -1
        self._hooked = None
        self._model = None
        self._state = None
        for p in (self.metrics_path, self.gradnorm_path):
            if p:
                os.makedirs(os.path.dirname(os.path.abspath(p)), exist_ok=True)

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _append(path, obj):
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(obj, ensure_ascii=False, allow_nan=False) + "\n")
            f.flush()

    def _read_control(self):
        if not self.control_path or not os.path.exists(self.control_path):
            return None
        try:
            with open(self.control_path, encoding="utf-8") as f:
                req = json.load(f)
        except (OSError, ValueError):
            return None  # half-written file: try again next step
        try:
            os.replace(self.control_path, self.control_path + ".consumed")
        except OSError:
            pass
        return req if isinstance(req, dict) else None

    def _ack(self, action, step, checkpoint=None):
        if self.control_path:
            tmp = self.control_path + ".ack.tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump({"action": action, "step": step, "checkpoint": checkpoint, "time": time.time()}, f)
            os.replace(tmp, self.control_path + ".ack")

    def _record_grad_norms(self, model, step, where):
        if not self.gradnorm_path or model is None or step == self._last_gn_step:
            return
        if step % self.gradnorm_every != 0:
            return
        sq, sharded, dev = {}, False, None
        with torch.no_grad():
            for name, p in model.named_parameters():
                if p.grad is None:
                    continue
                g = p.grad
                if hasattr(g, "to_local"):  # DTensor (FSDP2): this rank's shard -> all-reduce the sums below
                    g, sharded = g.to_local(), True
                key = layer_group(name)
                v = g.detach().float().pow(2).sum()
                sq[key] = sq[key] + v if key in sq else v
                dev = v.device
        if not sq:
            return
        layers = list(sq)
        vec = torch.stack([sq[k] for k in layers]).to(dev)  # one host sync for all layers
        if sharded and torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(vec)  # every rank must reach this point (it does: hooks run on all ranks)
        vals = vec.double().cpu().tolist()
        self._last_gn_step = step
        if self._state is None or self._state.is_world_process_zero:
            self._append(
                self.gradnorm_path,
                {
                    "step": step,
                    "layers": layers,
                    "norms": [_clean(math.sqrt(v)) for v in vals],
                    "total": _clean(math.sqrt(sum(vals))),
                    "where": where,
                },
            )

    # ------------------------------------------------------------------ events
    def on_train_begin(self, args, state, control, model=None, optimizer=None, **kwargs):
        self._model, self._state = model, state
        opt = getattr(optimizer, "optimizer", optimizer)  # unwrap accelerate's AcceleratedOptimizer
        if self.gradnorm_path and isinstance(opt, torch.optim.Optimizer) and self._hooked is None:
            # Fallback for custom loops (PPO) that never fire on_pre_optimizer_step. global_step is incremented
            # after the update, so the step being computed is global_step + 1. Only the first optimizer step of a
            # PPO update (of num_ppo_epochs * num_mini_batches) is recorded.
            def _pre_hook(optimizer, a, kw):
                self._record_grad_norms(self._model, self._state.global_step + 1, "optimizer_pre_hook")

            self._hooked = opt.register_step_pre_hook(_pre_hook)

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        self._state = state
        self._record_grad_norms(model, state.global_step + 1, "pre_optimizer_step")  # after clipping

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not self.metrics_path or not state.is_world_process_zero or not logs:
            return
        data = {k: _clean(v) for k, v in logs.items() if k != "step"}
        data = {k: v for k, v in data.items() if v is not None or _is_num(logs[k])}
        if "train_runtime" in logs:  # end-of-training summary, same step as the last train log
            self._append(self.metrics_path + ".summary.jsonl", {"step": state.global_step, "data": data})
        else:
            self._append(self.metrics_path, {"step": state.global_step, "data": data})

    def on_step_end(self, args, state, control, **kwargs):
        req = self._read_control() if state.is_world_process_zero else None
        req = _from_rank_zero(req)  # every rank stops or saves at the same step, or DDP would hang
        if not req:
            return
        action = req.get("action")
        if action == "pause":
            control.should_save = True
            control.should_training_stop = True
            self._pause_pending = True
        elif action == "save":
            control.should_save = True
            self._ack("save", state.global_step, self._ckpt_dir(args, state))
        elif action == "stop":
            control.should_training_stop = True
            self._ack("stop", state.global_step)
        return control

    def on_save(self, args, state, control, **kwargs):
        if self._pause_pending:
            self._pause_pending = False
            ckpt = self._ckpt_dir(args, state)
            self._ack("paused", state.global_step, ckpt)
            if self.raise_on_pause:
                raise TrainingPaused(ckpt)

    def on_train_end(self, args, state, control, **kwargs):
        if self._hooked is not None:
            self._hooked.remove()
            self._hooked = None

    @staticmethod
    def _ckpt_dir(args, state):
        return os.path.join(args.output_dir, f"checkpoint-{state.global_step}")


def attach_preclip_gradnorms(trainer):
    """Optional, Trainer-based loops only: record per-layer norms BEFORE clip_grad_norm_ (unclipped) by wrapping
    the private Trainer._clip_grad_norm (transformers 5.10). on_pre_optimizer_step then skips that step."""
    cb = next((c for c in trainer.callback_handler.callbacks if isinstance(c, PlatformCallback)), None)
    if cb is None or not hasattr(trainer, "_clip_grad_norm"):
        return False
    orig = trainer._clip_grad_norm

    def _clip(model):
        cb._state = trainer.state
        cb._record_grad_norms(trainer.model, trainer.state.global_step + 1, "pre_clip")
        return orig(model)

    trainer._clip_grad_norm = _clip
    return True


def _is_num(v):
    return isinstance(v, (int, float)) or (isinstance(v, torch.Tensor) and v.numel() == 1)
