"""GPU specs the configurator needs: memory as the device reports it, dense bf16 tensor throughput, bandwidth, links.

Memory is what `torch.cuda.get_device_properties().total_memory` reports (slightly less than the marketing figure);
throughput is the dense (non-sparse) bf16 figure with fp32 accumulate (fp16 for V100, which has no bf16).
Sources: ../shared/reference/memory.md §7 (NVIDIA datasheets, verl's flops table).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from platform_core.errors import InvalidInput, NotFound


@dataclass(frozen=True)
class GPU:
    """One GPU model."""

    key: str
    name: str
    memory_gib: float
    bf16_tflops: float
    bandwidth_gbs: float
    interconnect: str  # "nvlink" or "pcie": how GPUs of one node talk to each other
    bf16: bool = True
    flash_attention: bool = True
    note: str = ""

    @property
    def memory_bytes(self) -> int:
        return int(self.memory_gib * 2**30)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


GPUS: dict[str, GPU] = {
    g.key: g
    for g in [
        GPU("rtx4090", "RTX 4090 24GB", 23.6, 165.2, 1008, "pcie"),
        GPU("rtx5090", "RTX 5090 32GB", 31.4, 209.5, 1792, "pcie"),
        GPU("a10g", "A10G 24GB", 22.1, 70.0, 600, "pcie", note="bf16 throughput unofficial (about 70 TFLOPS)"),
        GPU("l40s", "L40S 48GB", 44.4, 362.05, 864, "pcie"),
        GPU("v100-16g", "V100 16GB", 15.8, 125.0, 900, "nvlink", bf16=False, flash_attention=False),
        GPU("v100", "V100 32GB", 31.7, 125.0, 900, "nvlink", bf16=False, flash_attention=False),
        GPU("a100-40g", "A100 40GB", 39.4, 312.0, 1555, "nvlink"),
        GPU("a100-80g", "A100 80GB", 79.2, 312.0, 2039, "nvlink"),
        GPU("h100", "H100 80GB (SXM)", 79.2, 989.0, 3350, "nvlink"),
        GPU("h200", "H200 141GB", 139.8, 989.0, 4800, "nvlink"),
    ]
}

CUSTOM_TFLOPS = 100.0
CUSTOM_BANDWIDTH = 1000.0


def custom_gpu(memory_gib: float, bf16_tflops: float | None = None) -> GPU:
    """A GPU known only by its memory (GiB); throughput defaults to 100 TFLOPS unless given."""
    if not 1 <= memory_gib <= 4096:
        raise InvalidInput(f"custom GPU memory: {memory_gib} GiB is out of range (1-4096)")
    tflops = bf16_tflops or CUSTOM_TFLOPS
    return GPU(
        "custom",
        f"Custom {memory_gib:g} GiB",
        float(memory_gib),
        float(tflops),
        CUSTOM_BANDWIDTH,
        "pcie",
        note="throughput assumed" if not bf16_tflops else "",
    )


def _key(text: str) -> str:
    return re.sub(r"[\s_]+", "", text.strip().lower()).replace("gb", "g").replace("nvidia", "")


ALIASES = {
    "4090": "rtx4090",
    "5090": "rtx5090",
    "a100": "a100-80g",
    "a10080g": "a100-80g",
    "a10040g": "a100-40g",
    "h100sxm": "h100",
    "h10080g": "h100",
    "h200141g": "h200",
    "v10032g": "v100",
    "v10016g": "v100-16g",
}


def get_gpu(name: str, memory_gib: float | None = None, bf16_tflops: float | None = None) -> GPU:
    """Return a GPU by key or common name ("RTX 4090", "A100-80G", "h100"); "custom" (or "custom:48") needs memory."""
    key = _key(name)
    if key.startswith("custom"):
        size = key.partition(":")[2]
        if size:
            try:
                memory_gib = float(size)
            except ValueError as exc:
                raise InvalidInput(f"GPU {name!r}: write custom:<GiB>, e.g. custom:48") from exc
        if memory_gib is None:
            raise InvalidInput("GPU 'custom' needs its memory in GiB (--gpu-memory or custom:<GiB>)")
        return custom_gpu(memory_gib, bf16_tflops)
    found = GPUS.get(key) or GPUS.get(ALIASES.get(key, "")) or GPUS.get(ALIASES.get(key.replace("-", ""), ""))
    if found is None:
        for gpu in GPUS.values():
            if _key(gpu.name) == key or gpu.key.replace("-", "") == key.replace("-", ""):
                found = gpu
    if found is None:
        raise NotFound(f"unknown GPU {name!r}: one of {', '.join(GPUS)}, or custom:<GiB>")
    return found
