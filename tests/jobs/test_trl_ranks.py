"""A pause or stop request read by rank 0 reaches every rank of a multi-process TRL run (two real gloo processes)."""

from __future__ import annotations

import os
import sys

import pytest
import torch.distributed as dist
import torch.multiprocessing as mp
from tests_helpers import closed_port as free_port


def _rank(rank: int, port: int, out: str) -> None:
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "platform_core", "plugins"))
    from trl_callback import _from_rank_zero

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        value = {"action": "pause"} if rank == 0 else None  # only rank 0 reads the control file
        got = _from_rank_zero(value)
        with open(f"{out}.{rank}", "w") as handle:
            handle.write(repr(got))
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available(), reason="torch without distributed support")
def test_the_control_request_is_broadcast_from_rank_zero(tmp_path):
    out = str(tmp_path / "seen")
    mp.spawn(_rank, args=(free_port(), out), nprocs=2, join=True)
    assert [open(f"{out}.{r}").read() for r in (0, 1)] == ["{'action': 'pause'}"] * 2
