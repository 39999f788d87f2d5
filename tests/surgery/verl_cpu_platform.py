"""A verl 0.9.1 platform plugin that lets verl's real SFT trainer run on CPU (test fixture only).

Loaded in the trainer through `VERL_USE_EXTERNAL_MODULES=verl_cpu_platform` with `VERL_PLATFORM=cpu` (see
../shared/reference/verl.md section 6). This is part (a), the CPU platform, of the teammate's spike plugin
(/tmp/spike_verl/verl_cpu_plugin.py), copied so the surgery tests can produce a real FSDP checkpoint; the platform's
own training plugin (platform_core/plugins) is expected to carry the same code.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

import torch


def _install_torch_cpu_shims() -> None:
    """Give torch.cpu the functions verl calls on its device module that torch.cpu lacks."""
    import psutil

    module = torch.cpu
    shims = {
        "empty_cache": lambda: None,
        "manual_seed": lambda seed: torch.manual_seed(seed),
        "manual_seed_all": lambda seed: torch.manual_seed(seed),
        "memory_allocated": lambda device=None: 0,
        "max_memory_allocated": lambda device=None: 0,
        "memory_reserved": lambda device=None: 0,
        "max_memory_reserved": lambda device=None: 0,
        "reset_peak_memory_stats": lambda device=None: None,
        "reset_max_memory_allocated": lambda device=None: None,
        "mem_get_info": lambda device=None: (psutil.virtual_memory().available, psutil.virtual_memory().total),
        "get_device_name": lambda device=None: "cpu",
        "get_rng_state": lambda device=None: torch.get_rng_state(),
        "set_rng_state": lambda state, device=None: torch.set_rng_state(state),
        "set_per_process_memory_fraction": lambda fraction, device=None: None,
        "ipc_collect": lambda: None,
    }
    for name, function in shims.items():
        if not hasattr(module, name):
            setattr(module, name, function)


def _install_backend_dedup() -> None:
    """verl builds "cpu:gloo,cpu:gloo" on this platform; torch refuses a device type given twice."""
    import torch.distributed as dist

    if getattr(dist.init_process_group, "_deduplicated", False):
        return
    original = dist.init_process_group

    def init_process_group(*args, **kwargs):
        backend = kwargs.get("backend")
        if isinstance(backend, str) and "," in backend:
            seen, parts = set(), []
            for part in backend.split(","):
                device = part.split(":")[0] if ":" in part else part
                if device not in seen:
                    seen.add(device)
                    parts.append(part)
            kwargs["backend"] = ",".join(parts)
        return original(*args, **kwargs)

    init_process_group._deduplicated = True
    dist.init_process_group = init_process_group


def _register_cpu_platform() -> None:
    from verl.plugin.platform import PlatformBase, PlatformRegistry

    @PlatformRegistry.register(platform="cpu")
    class PlatformCPU(PlatformBase):
        device_name = property(lambda self: "cpu")
        vendor_name = property(lambda self: "cpu")
        device_module = property(lambda self: torch.cpu)

        def is_available(self):
            return True

        def is_platform_available(self, use_smi_check=False):
            return False  # chosen only with VERL_PLATFORM=cpu

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


if os.environ.get("VERL_PLATFORM", "").strip().lower() == "cpu":
    _install_torch_cpu_shims()
    _install_backend_dedup()
    _register_cpu_platform()
