"""Multi-process training with PyTorch DDP, launched by torchrun (one process per GPU, or per CPU worker).

    torchrun --nproc_per_node=4 -m weakseg train configs/ct.yaml                  # one node, 4 GPUs
    torchrun --nnodes=2 --nproc_per_node=8 --rdzv_backend=c10d --rdzv_endpoint=HOST:29500 -m weakseg train ...

torchrun sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``; ``DistEnv.from_env()`` reads them and
``DistEnv.init`` starts the process group (NCCL on CUDA, gloo on CPU). The trainer then:

* treats ``train.batch_size`` (and ``train.stream_batch_sizes``) as the **global** batch: each rank draws the
  same seeded sequence of samples and keeps its own contiguous block of every batch (``BatchStream(shard=)``),
  so N processes see exactly the samples one process would, and the batch must divide by the world size;
* wraps each trainable network of the method in its own ``DistributedDataParallel`` (``Method.distribute``);
  gradients are averaged across ranks in backward, so with mean-reduced losses and no batch statistics (e.g.
  instance norm) the trajectory equals the single-process one. BatchNorm statistics are per rank unless
  ``train.sync_batchnorm`` (CUDA only) converts them to ``SyncBatchNorm``;
* lets rank 0 alone write the run folder, checkpoints, metrics, pictures and wandb, evaluate, and decide
  early stopping (broadcast to the others); logged training losses are averaged over ranks;
* checks losses for NaN/inf on every rank together (one all-reduce), so every rank stops at the same step.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from weakseg.nets.ddp import no_sync, unwrap

__all__ = ["DistEnv", "no_sync", "unwrap"]


@dataclass(frozen=True)
class DistEnv:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> DistEnv:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        return cls(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self, requested: torch.device) -> torch.device:
        """One GPU per process: ``cuda:LOCAL_RANK`` when training on CUDA."""
        if self.enabled and requested.type == "cuda":
            torch.cuda.set_device(self.local_rank)
            return torch.device("cuda", self.local_rank)
        return requested

    def init(self, device: torch.device) -> None:
        if self.enabled and not dist.is_initialized():
            backend = "nccl" if device.type == "cuda" else "gloo"
            dist.init_process_group(backend, timeout=datetime.timedelta(minutes=30))

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def mean(self, values: dict[str, float], device: torch.device) -> dict[str, float]:
        """Average float logs over ranks (every rank calls this with the same keys)."""
        if not self.enabled or not values:
            return values
        keys = sorted(values)
        t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=device)
        dist.all_reduce(t)
        return {k: float(v) / self.world for k, v in zip(keys, t.tolist())}

    def any(self, flag: bool, device: torch.device) -> bool:
        """True on every rank when ``flag`` is True on any rank."""
        if not self.enabled:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=device)
        dist.all_reduce(t)
        return bool(t.item() > 0)

    def broadcast_code(self, code: int, device: torch.device) -> int:
        """Rank 0's ``code`` (0 go on, 1 early stop, 2 rank 0 failed) on every rank."""
        if not self.enabled:
            return code
        t = torch.tensor([float(code)], device=device)
        dist.broadcast(t, 0)
        return int(t.item())

    def close(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()
