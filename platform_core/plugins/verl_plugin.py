"""The platform's verl plugin: a CPU platform and in-process hooks (status/pause, per-layer gradient norms).

Loaded in every verl process through verl's own door for outside code:
    PYTHONPATH=<dir of this file>  VERL_USE_EXTERNAL_MODULES=verl_plugin
(`import verl` imports it, on every torchrun rank and Ray worker). It imports only torch, verl and the standard
library, so the platform copies this one file next to remote runs. Parts:

(a) CPU platform (only active with VERL_PLATFORM=cpu): registers platform "cpu", adds the torch.cpu functions
    verl calls that torch.cpu lacks, de-duplicates the "cpu:gloo,cpu:gloo" backend string.
    Also needs: VERL_ENGINE_DEVICE=cuda, engine.strategy=fsdp2, +model.override_config.attn_implementation=sdpa,
    trainer.device=cpu, data.num_workers=0.
(b) Status + pause (any platform):
    PLATFORM_CONTROL_FILE=/abs/control.json   app writes {"action": "pause"} (or "stop": same thing)
    PLATFORM_STATUS_FILE=/abs/status.json     default: status.json next to the control file
    PLATFORM_PAUSE_AT_STEP=N                  (tests) behave as if pause was requested after step N
    Every Tracking.log call on the logging rank rewrites the status JSON (atomic replace).
    A pause lowers trainer.total_training_steps to the current step, so verl's own last-step path runs
    (validation if val_files, checkpoint, clean return, exit code 0). The control file is renamed to
    <file>.consumed.<step> so a resumed run is not paused again by a stale request.
    Single process (1 rank, or the PPO driver): handled inside Tracking.log.
    torchrun with >1 ranks: Tracking.log only runs on rank 0, so the decision is taken in
    TrainingWorker.train_batch (called by every rank once per SFT step), rank 0 reads the file and the flag
    is all-reduced (one 1-element gloo all_reduce per step) so all ranks stop at the same step.
(c) Per-layer gradient norms (any platform, FSDP/FSDP2 engine):
    PLATFORM_GRADNORM_FILE=/abs/gradnorms.jsonl  (unset = hook off)
    PLATFORM_GRADNORM_EVERY=N                     (default 1)
    PLATFORM_GRADNORM_DETAIL=1                    (also layers.N.attn / layers.N.mlp / layers.N.norm)
    Record (rank 0 only): {"step", "layers": [...], "norms": [...], "total", "hook_ms"}; norms are pre-clip L2
    norms, all-reduced over ranks (FSDP2 grads are sharded DTensors); "total" equals train/grad_norm.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from contextlib import contextmanager

import torch

log = logging.getLogger("verl_plugin")

_CPU = os.environ.get("VERL_PLATFORM", "").strip().lower() == "cpu"


# ======================================================================================
# (a) CPU platform
# ======================================================================================
def _install_torch_cpu_shims():
    import psutil

    c = torch.cpu

    def _set(name, fn):
        if not hasattr(c, name):
            setattr(c, name, fn)

    _set("empty_cache", lambda: None)
    _set("manual_seed", lambda seed: torch.manual_seed(seed))
    _set("manual_seed_all", lambda seed: torch.manual_seed(seed))
    _set("memory_allocated", lambda device=None: 0)
    _set("max_memory_allocated", lambda device=None: 0)
    _set("memory_reserved", lambda device=None: 0)
    _set("max_memory_reserved", lambda device=None: 0)
    _set("reset_peak_memory_stats", lambda device=None: None)
    _set("reset_max_memory_allocated", lambda device=None: None)
    _set("mem_get_info", lambda device=None: (psutil.virtual_memory().available, psutil.virtual_memory().total))
    _set("get_device_name", lambda device=None: "cpu")
    _set("get_rng_state", lambda device=None: torch.get_rng_state())
    _set("set_rng_state", lambda state, device=None: torch.set_rng_state(state))
    _set("set_per_process_memory_fraction", lambda fraction, device=None: None)
    _set("ipc_collect", lambda: None)


def _install_backend_dedup():
    import torch.distributed as dist

    if getattr(dist.init_process_group, "_platform_plugin", False):
        return
    orig = dist.init_process_group

    def init_process_group(*args, **kwargs):
        backend = kwargs.get("backend")
        if isinstance(backend, str) and "," in backend:
            seen, parts = set(), []
            for part in backend.split(","):
                dev = part.split(":")[0] if ":" in part else part
                if dev not in seen:
                    seen.add(dev)
                    parts.append(part)
            kwargs["backend"] = ",".join(parts)  # "cpu:gloo,cpu:gloo" -> "cpu:gloo"
        return orig(*args, **kwargs)

    init_process_group._platform_plugin = True
    dist.init_process_group = init_process_group


def _register_cpu_platform():
    from verl.plugin.platform import PlatformBase, PlatformRegistry

    @PlatformRegistry.register(platform="cpu")
    class PlatformCPU(PlatformBase):
        @property
        def device_name(self):
            return "cpu"

        @property
        def vendor_name(self):
            return "cpu"

        @property
        def device_module(self):
            return torch.cpu

        def is_available(self):
            return True

        def is_platform_available(self, use_smi_check=False):
            # never auto-detected: only chosen with VERL_PLATFORM=cpu
            return False

        def current_device(self):
            return "cpu"  # an int would make model.to(0) ask for CUDA

        def device_count(self):
            return 1

        def set_device(self, device_index):
            return None

        def synchronize(self, device_index=None):
            return None

        def manual_seed(self, seed):
            torch.manual_seed(seed)

        def manual_seed_all(self, seed):
            torch.manual_seed(seed)

        def set_allocator_settings(self, settings):
            return None

        def empty_cache(self):
            return None

        def get_device_capability(self, device_index=0):
            return (None, None)

        def communication_backend_name(self):
            return "gloo"

        def visible_devices_envvar(self):
            return "CPU_VISIBLE_DEVICES"

        @contextmanager
        def nvtx_range(self, msg):
            yield

        def profiler_start(self):
            return None

        def profiler_stop(self):
            return None

        def ray_resource_name(self):
            return "CPU"

        def ray_noset_envvars(self):
            return []

        def is_ipc_supported(self):
            return False

        def cudart(self):
            return None

    return PlatformCPU


# ======================================================================================
# helpers
# ======================================================================================
def _dist():
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist
    return None


def _rank():
    d = _dist()
    return d.get_rank() if d else 0


def _world():
    d = _dist()
    return d.get_world_size() if d else 1


def _find_trainer(max_depth=40):
    """Walk up the stack to the trainer's fit() frame. Returns (trainer, global_step) or (None, None).

    Works for verl.trainer.sft_trainer.SFTTrainer.fit (local `global_step`) and the PPO trainers
    (attribute `self.global_steps`)."""
    f = sys._getframe(1)
    depth = 0
    while f is not None and depth < max_depth:
        if f.f_code.co_name == "fit":
            loc = f.f_locals
            obj = loc.get("self")
            if obj is not None and hasattr(obj, "total_training_steps"):
                step = loc.get("global_step")
                if step is None:
                    step = getattr(obj, "global_steps", None)
                return obj, step
        f = f.f_back
        depth += 1
    return None, None


def _atomic_write_json(path, obj):
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as fh:
        json.dump(obj, fh)
    os.replace(tmp, path)


# ======================================================================================
# (b) status + pause
# ======================================================================================
_CONTROL = os.environ.get("PLATFORM_CONTROL_FILE")
_STATUS = os.environ.get("PLATFORM_STATUS_FILE") or (
    os.path.join(os.path.dirname(os.path.abspath(_CONTROL)), "status.json") if _CONTROL else None
)
_PAUSE_AT = int(os.environ.get("PLATFORM_PAUSE_AT_STEP", "0") or 0)  # tests: pause after this step, no file
_T0 = time.time()
_pause_state = {"requested_at_step": None}
_last_metrics = {}


def _read_control(step=None):
    """Return the requested action ('pause'/'stop') or None. Cheap: one failed open() when no file."""
    if _PAUSE_AT and step is not None and step >= _PAUSE_AT:
        return "pause"
    if not _CONTROL:
        return None
    try:
        with open(_CONTROL) as fh:
            action = json.load(fh).get("action")
    except (FileNotFoundError, ValueError, AttributeError):
        return None
    return action if action in ("pause", "stop") else None


def _consume_control(step):
    if not _CONTROL:
        return
    try:
        os.replace(_CONTROL, f"{_CONTROL}.consumed.{step}")
    except OSError:
        pass


def _apply_pause(trainer, step):
    if step is None:
        return False
    if hasattr(trainer, "global_steps") and not hasattr(trainer, "ckpt_handler"):
        # PPO trainers (UNTESTED here, no GPU/rollout): is_last_step was computed at the top of the step, before
        # logger.log, and the loop runs while global_steps <= total_training_steps. Setting total=N would leave
        # the loop after step N WITHOUT saving; total=N+1 makes the next step the last one (saved if save_freq>0).
        target = int(step) + 1
    else:
        # SFT: fit() computes is_last_step = global_step >= self.total_training_steps right after tracking.log
        # (and right after train_batch on other ranks) -> this step is the last one: val + checkpoint + return.
        target = int(step)
    trainer.total_training_steps = target
    _pause_state["requested_at_step"] = target
    return True


def _write_status(step, data, trainer):
    if not _STATUS:
        return
    try:
        st = {
            "step": int(step) if step is not None else None,
            "time": time.time(),
            "elapsed_s": round(time.time() - _T0, 3),
            "pid": os.getpid(),
            "total_training_steps": getattr(trainer, "total_training_steps", None) if trainer else None,
            "pause_at_step": _pause_state["requested_at_step"],
        }
        for k in ("train/loss", "train/lr", "train/grad_norm", "val/loss"):
            if k in data:
                try:
                    _last_metrics[k] = float(data[k])
                except (TypeError, ValueError):
                    pass
        st.update(_last_metrics)
        _atomic_write_json(_STATUS, st)
    except Exception as e:  # never break training for a status file
        log.warning("status write failed: %s", e)


def _install_tracking_hook():
    from verl.utils.tracking import Tracking

    if getattr(Tracking.log, "_platform_plugin", False):
        return
    orig_log = Tracking.log

    def log_(self, data, step, backend=None):
        out = orig_log(self, data, step, backend=backend)
        try:
            trainer = None
            is_val_only = bool(data) and all(str(k).startswith("val") for k in data)
            if _CONTROL or _STATUS or _PAUSE_AT:
                trainer, _ = _find_trainer()
            # pause here only when there is a single training process (1 rank, or the PPO driver);
            # with >1 SFT ranks it is decided collectively in TrainingWorker.train_batch
            if (
                (_CONTROL or _PAUSE_AT)
                and not is_val_only
                and _world() == 1
                and _pause_state["requested_at_step"] is None
            ):
                if trainer is not None and _read_control(step):
                    if _apply_pause(trainer, step):
                        _consume_control(step)
                        print(f"[platform plugin] pause requested: stopping after step {step}", flush=True)
            _write_status(step, data, trainer)
        except Exception as e:
            log.warning("tracking hook failed: %s", e)
        return out

    log_._platform_plugin = True
    Tracking.log = log_


def _install_multirank_pause_hook():
    from verl.workers.engine_workers import TrainingWorker

    orig = TrainingWorker.train_batch
    if getattr(orig, "_platform_plugin", False):
        return

    def train_batch(self, data):
        out = orig(self, data)
        if (_CONTROL or _PAUSE_AT) and _world() > 1 and _pause_state["requested_at_step"] is None:
            trainer, step = _find_trainer()
            # every SFT rank finds the SFTTrainer frame (Ray PPO workers find none and skip the collective)
            if trainer is not None and step is not None:
                d = _dist()
                flag = torch.tensor([1 if (d.get_rank() == 0 and _read_control(step)) else 0], dtype=torch.int32)
                d.all_reduce(flag, op=d.ReduceOp.MAX)  # CPU tensor -> gloo group ("cpu:gloo" is always there)
                if flag.item():
                    _apply_pause(trainer, step)
                    if d.get_rank() == 0:
                        _consume_control(step)
                        print(f"[platform plugin] pause requested: all ranks stop after step {step}", flush=True)
        return out

    # keep verl's @register metadata (dispatch mode attributes) on the wrapper
    for k, v in getattr(orig, "__dict__", {}).items():
        setattr(train_batch, k, v)
    train_batch.__wrapped__ = orig
    train_batch.__name__ = orig.__name__
    train_batch.__qualname__ = orig.__qualname__
    train_batch._platform_plugin = True
    TrainingWorker.train_batch = train_batch


# ======================================================================================
# (b2) SFT resume at an epoch boundary (verl issue #7401): the saved StatefulDataLoader state is "epoch exhausted",
#      fit() starts at epoch step//steps_per_epoch, the first iter() yields nothing, so the resumed run silently
#      skips a whole epoch (or runs 0 steps and exits 0). Fix: reset the dataloader to a fresh state in that case.
#      PLATFORM_FIX_EPOCH_BOUNDARY=0 disables it.
# ======================================================================================
def _install_epoch_boundary_fix():
    if os.environ.get("PLATFORM_FIX_EPOCH_BOUNDARY", "1").lower() in ("0", "false", "no"):
        return
    from verl.utils.checkpoint.checkpoint_handler import CheckpointHandler

    orig = CheckpointHandler.load_checkpoint
    if getattr(orig, "_platform_plugin", False):
        return

    def load_checkpoint(self):
        dl = getattr(self, "train_dataloader", None)
        fresh = dl.state_dict() if dl is not None and hasattr(dl, "state_dict") else None
        step = orig(self)
        try:
            n = len(dl) if dl is not None else 0
            if step and n and fresh is not None and step % n == 0:
                dl.load_state_dict(fresh)
                if _rank() == 0:
                    print(
                        f"[platform plugin] resumed at epoch boundary (step {step}, {n} steps/epoch): "
                        f"dataloader reset to the start of epoch {step // n + 1} (verl #7401)",
                        flush=True,
                    )
        except Exception as e:
            log.warning("epoch-boundary fix failed: %s", e)
        return step

    load_checkpoint._platform_plugin = True
    CheckpointHandler.load_checkpoint = load_checkpoint


# ======================================================================================
# (c) per-layer gradient norms
# ======================================================================================
_GN_FILE = os.environ.get("PLATFORM_GRADNORM_FILE")
_GN_EVERY = max(1, int(os.environ.get("PLATFORM_GRADNORM_EVERY", "1")))
_GN_DETAIL = os.environ.get("PLATFORM_GRADNORM_DETAIL", "0").lower() in ("1", "true", "yes")
_LAYER_RE = re.compile(r"(?:^|\.)layers\.(\d+)\.(.*)$")
_WRAP_TOKENS = ("_fsdp_wrapped_module.", "_checkpoint_wrapped_module.", "_orig_mod.", "base_model.model.")


def _group_of(name):
    for t in _WRAP_TOKENS:
        name = name.replace(t, "")
    m = _LAYER_RE.search(name)
    if m:
        idx, rest = int(m.group(1)), m.group(2)
        if not _GN_DETAIL:
            return (1, idx, 0), f"layers.{idx}"
        if "attn" in rest or "attention" in rest:
            sub, o = "attn", 0
        elif "mlp" in rest or "experts" in rest or "moe" in rest:
            sub, o = "mlp", 1
        else:
            sub, o = "norm", 2
        return (1, idx, o), f"layers.{idx}.{sub}"
    if "embed_tokens" in name or "wte" in name or "word_embeddings" in name:
        return (0, 0, 0), "embed"
    if "lm_head" in name:
        return (3, 0, 0), "head"
    return (2, 0, 0), "rest"  # final norm, rotary buffers, value head, ...


class _GradNormState:
    def __init__(self):
        self.calls = 0
        self.layout_key = None
        self.names = None
        self.index = None  # LongTensor param-position -> group idx
        self.fh = None


_gn = _GradNormState()


def _local(t):
    return t.to_local() if hasattr(t, "to_local") else t


def _compute_layer_norms(module):
    params = [(n, p) for n, p in module.named_parameters() if p.grad is not None]
    if not params:
        return None, None
    key = tuple(n for n, _ in params)
    if key != _gn.layout_key:  # build name->group mapping once
        groups = {}
        for n, _ in params:
            k, g = _group_of(n)
            groups.setdefault(g, k)
        names = sorted(groups, key=lambda g: groups[g])
        pos = {g: i for i, g in enumerate(names)}
        _gn.index = torch.tensor([pos[_group_of(n)[1]] for n, _ in params], dtype=torch.long)
        _gn.names, _gn.layout_key = names, key
    grads = [_local(p.grad).detach() for _, p in params]
    dev = grads[0].device
    # one fused kernel for all per-tensor L2 norms (empty shards give 0)
    sq = torch.stack(torch._foreach_norm(grads, 2.0)).float().pow(2)
    sums = torch.zeros(len(_gn.names), dtype=torch.float32, device=dev)
    sums.index_add_(0, _gn.index.to(dev), sq)
    # FSDP2: each rank holds a shard of every grad -> sum the squares over the shard group
    g0 = params[0][1].grad
    d = _dist()
    if d is not None and hasattr(g0, "device_mesh"):
        mesh = g0.device_mesh
        for dim, placement in enumerate(g0.placements):
            if placement.is_shard():
                d.all_reduce(sums, op=d.ReduceOp.SUM, group=mesh.get_group(dim))
    elif d is not None and _world() > 1 and not hasattr(g0, "device_mesh"):
        pass  # FSDP1 / DDP: grads already full (or flat params) -> no reduction
    return _gn.names, sums


def _install_gradnorm_hook():
    if not _GN_FILE:
        return
    from verl.workers.engine.fsdp.transformer_impl import FSDPEngine

    orig = FSDPEngine.optimizer_step
    if getattr(orig, "_platform_plugin", False):
        return

    def optimizer_step(self):
        _gn.calls += 1
        _, step = _find_trainer()
        step = step if step is not None else _gn.calls  # PPO workers: optimizer-step counter
        if step % _GN_EVERY == 0:
            t0, c0 = time.perf_counter(), time.thread_time()
            try:
                names, sums = _compute_layer_norms(self.module)
                if names is not None and _rank() == 0:
                    norms = sums.sqrt().tolist()
                    rec = {
                        "step": int(step),
                        "layers": names,
                        "norms": norms,
                        "total": float(sums.sum().sqrt().item()),
                        "hook_ms": round((time.perf_counter() - t0) * 1e3, 3),  # wall
                        "hook_cpu_ms": round((time.thread_time() - c0) * 1e3, 3),  # this thread's CPU
                    }
                    if _gn.fh is None:
                        os.makedirs(os.path.dirname(os.path.abspath(_GN_FILE)), exist_ok=True)
                        _gn.fh = open(_GN_FILE, "a", buffering=1)
                    _gn.fh.write(json.dumps(rec) + "\n")
            except Exception as e:
                log.warning("grad-norm hook failed at step %s: %s", step, e)
        return orig(self)

    optimizer_step._platform_plugin = True
    FSDPEngine.optimizer_step = optimizer_step


# ======================================================================================
# install
# ======================================================================================
if _CPU:
    _install_torch_cpu_shims()
    _install_backend_dedup()
    _register_cpu_platform()

# The hooks are installed lazily, when verl imports the module that defines the patched class, so that
# `import verl` stays as cheap as without the plugin (an eager import of engine_workers costs ~3 s on 2 cores)
# and processes that never train (model_merger, config validation) are untouched.
import importlib.abc  # noqa: E402

_LAZY = {
    "verl.utils.tracking": [_install_tracking_hook],
    "verl.workers.engine_workers": [_install_multirank_pause_hook],
    "verl.utils.checkpoint.checkpoint_handler": [_install_epoch_boundary_fix],
    "verl.workers.engine.fsdp.transformer_impl": [_install_gradnorm_hook],
}


def _run_hooks(name):
    for fn in _LAZY.pop(name, []):
        try:
            fn()
        except Exception as e:  # pragma: no cover
            log.warning("platform plugin: %s not installed: %s", fn.__name__, e)


class _PostImportFinder(importlib.abc.MetaPathFinder):
    """Wraps the real loader of the modules in _LAZY so the hook runs right after the module body."""

    def find_spec(self, name, path, target=None):
        if name not in _LAZY:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        orig_exec = loader.exec_module

        def exec_module(module, _orig=orig_exec, _name=name):
            _orig(module)
            _run_hooks(_name)

        loader.exec_module = exec_module
        return spec


for _name in list(_LAZY):
    if _name in sys.modules:  # already imported (e.g. plugin loaded late): patch now
        _run_hooks(_name)
if _LAZY:
    sys.meta_path.insert(0, _PostImportFinder())
