"""torchrun + DistributedDataParallel: one process per GPU (or CPU worker, gloo), rank 0 logs and saves."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world: int = 1

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device_kind: str) -> DistInfo:
    """Join the process group torchrun describes in the environment (no-op for a single process)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    info = DistInfo(int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0")), world)
    backend = "nccl" if device_kind == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    if device_kind == "cuda":
        torch.cuda.set_device(info.local_rank)
    return info


def teardown(info: DistInfo, finished: bool = True) -> None:
    """Leave the group together after a run that finished: a rank that destroys its group while another
    still saves its checkpoint closes the connection under it (gloo then aborts that rank: "terminate
    called without an active exception", about one run in three on 2 CPU cores). After an error no
    barrier: the other ranks may be waiting in a collective this rank will never join."""
    if info.enabled and dist.is_initialized():
        try:
            if finished:
                dist.barrier()
        finally:
            dist.destroy_process_group()


def all_sum(values: list[float], info: DistInfo, device: torch.device) -> list[float]:
    if not info.enabled:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def broadcast_int(value: int, info: DistInfo, device: torch.device) -> int:
    """Rank 0 decides (e.g. why to stop), every rank follows, so no rank waits forever in a collective."""
    if not info.enabled:
        return value
    t = torch.tensor([value], device=device)
    dist.broadcast(t, 0)
    return int(t.item())
