"""A pause or stop request read by rank 0 reaches every rank of a multi-process TRL run (two real gloo processes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests_helpers import closed_port

PLUGINS = Path(__file__).resolve().parents[2] / "platform_core" / "plugins"
RANK = """
import sys
sys.path.insert(0, sys.argv[1])
import torch.distributed as dist
from trl_callback import _from_rank_zero

rank, port = int(sys.argv[2]), int(sys.argv[3])
dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
got = _from_rank_zero({"action": "pause"} if rank == 0 else None)  # only rank 0 reads the control file
dist.destroy_process_group()
print(repr(got))
"""


def test_the_control_request_is_broadcast_from_rank_zero():
    port = closed_port()
    ranks = [
        subprocess.Popen(
            [sys.executable, "-c", RANK, str(PLUGINS), str(rank), str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in (0, 1)
    ]
    outputs = [proc.communicate(timeout=120) for proc in ranks]
    assert [proc.returncode for proc in ranks] == [0, 0], [err[-2000:] for _out, err in outputs]
    assert [out.strip() for out, _err in outputs] == ["{'action': 'pause'}"] * 2
