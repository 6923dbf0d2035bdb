"""DDP helpers that methods and networks need without the engine: the network inside a
``DistributedDataParallel`` wrapper, and forward passes of frozen wrapped networks."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn

__all__ = ["no_sync", "unwrap"]


def unwrap(module: nn.Module) -> nn.Module:
    """The network inside a ``DistributedDataParallel`` wrapper (or the module itself)."""
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


@contextlib.contextmanager
def no_sync(modules: list[nn.Module]) -> Iterator[None]:
    """Forward passes of frozen DDP networks (a discriminator in the generator's step) that must not expect a
    gradient reduction; a no-op for plain modules."""
    with contextlib.ExitStack() as stack:
        for m in modules:
            if isinstance(m, nn.parallel.DistributedDataParallel):
                stack.enter_context(m.no_sync())
        yield
