"""Endless, seeded, resumable batch streams over a dataset.

The k-th sample drawn by a stream is ``indices[perm(seed, k // n)[k % n]]``: a fresh seeded permutation per
epoch of the dataset's ``draw_indices`` when it has them (``data.extra_labeled_share``), else of its n indices.
So the stream's whole state is one integer (batches consumed), saved in checkpoints; resuming rebuilds the
exact same sequence of batches, with any number of loader workers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate

from weakseg.keys import Keys

__all__ = ["BatchStream", "SHAPE_KEY", "move_to_device", "pad_collate"]

SHAPE_KEY = "spatial_shape"  # (B, ndim) original spatial size of each sample, added by pad_collate
_SPATIAL = {Keys.IMAGE: 1, Keys.LABEL: 0, Keys.WEIGHT: 0}  # key -> number of leading non-spatial dims


def pad_collate(divisor: int = 1) -> Callable[[list[dict]], dict]:
    """Collate samples of differing sizes: pad image, label and weight at their end to the batch's largest
    size rounded up to ``divisor`` (image and weight with 0, label with 0 = background), and record each
    sample's original size under ``SHAPE_KEY`` so predictions can be cropped back."""

    def collate(items: list[dict]) -> dict:
        shapes = [tuple(it[Keys.IMAGE].shape[1:]) for it in items]
        target = [math.ceil(max(s[d] for s in shapes) / divisor) * divisor for d in range(len(shapes[0]))]
        padded = []
        for it in items:
            it = dict(it)
            for key, lead in _SPATIAL.items():
                if key in it and torch.is_tensor(it[key]):
                    spatial = it[key].shape[lead:]
                    pad = [p for s, t in reversed(list(zip(spatial, target))) for p in (0, t - s)]
                    if any(pad):
                        it[key] = F.pad(it[key], pad)  # constant 0 on the trailing spatial dims
            padded.append(it)
        batch = default_collate(padded)
        batch[SHAPE_KEY] = torch.tensor(shapes)
        return batch

    return collate


class _OffsetSampler(Sampler[tuple[int, int]]):
    """Yields ``(dataset index, draw number k)``; k seeds the sample's augmentation. Each epoch is a seeded
    permutation of ``indices`` (repeats allowed). Sharded (``world`` > 1): only the draws of this ``rank``'s
    contiguous block of every global batch of ``batch`` draws."""

    def __init__(
        self, indices: Sequence[int], seed: int, start: int, batch: int = 1, rank: int = 0, world: int = 1
    ) -> None:
        self.indices = indices
        self.n, self.seed, self.start = len(indices), seed, start
        self.batch, self.rank, self.local = batch, rank, batch // world

    def __iter__(self) -> Iterator[tuple[int, int]]:
        k = self.start
        perm, epoch = None, -1
        while True:
            if k // self.n != epoch:
                epoch = k // self.n
                g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
                perm = torch.randperm(self.n, generator=g).tolist()
            if (k % self.batch) // self.local == self.rank:
                yield self.indices[perm[k % self.n]], k
            k += 1


class _Draws(Dataset):
    """``dataset[(index, k)]``: the sample, augmented with a seed that depends only on (stream seed, k), so
    the same batches come out with any number of workers and after a resume."""

    def __init__(self, dataset: Dataset, transform: Callable[[dict, int], dict] | None, seed: int) -> None:
        self.dataset, self.transform, self.seed = dataset, transform, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> dict:
        index, k = key
        sample = self.dataset[index]
        if self.transform is None:
            return sample
        return self.transform(sample, (self.seed * 1_000_003 + k) % 2**32)


def _seed_worker(worker_id: int) -> None:
    import random

    import numpy as np

    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


class BatchStream:
    """``next(stream)`` returns the next collated batch; ``consumed`` is the resumable state."""

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        seed: int,
        num_workers: int = 0,
        pin_memory: bool = False,
        size_divisor: int = 1,
        transform: Callable[[dict, int], dict] | None = None,
        shard: tuple[int, int] = (0, 1),
    ) -> None:
        """``batch_size`` is the global batch; with ``shard=(rank, world)`` (DDP) this stream yields the rank's
        ``batch_size // world`` samples of each global batch, the same samples one process would draw."""
        rank, world = shard
        if batch_size % world:
            raise ValueError(
                f"the global batch {batch_size} is not divisible by the {world} processes; set a batch size that "
                f"is a multiple of {world} (train.batch_size / train.stream_batch_sizes are global batches)"
            )
        self.rank, self.world = rank, world
        if len(dataset) == 0:
            raise ValueError(
                "cannot train on an empty dataset split; check data.root and the split fractions"
            )
        self.dataset, self.batch_size, self.seed = dataset, batch_size, seed
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.collate = pad_collate(size_divisor)
        self.draws = _Draws(dataset, transform, seed)
        self.consumed = 0
        self._it: Iterator | None = None

    def _make_iter(self) -> Iterator:
        g = torch.Generator().manual_seed(self.seed + 7919 * self.consumed)
        draws = getattr(self.dataset, "draw_indices", None)
        sampler = _OffsetSampler(
            range(len(self.dataset)) if draws is None else draws,
            self.seed,
            self.consumed * self.batch_size,
            self.batch_size,
            self.rank,
            self.world,
        )
        loader = DataLoader(
            self.draws,
            batch_size=self.batch_size // self.world,
            sampler=sampler,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=False,
            worker_init_fn=_seed_worker,
            collate_fn=self.collate,
            generator=g,
        )
        return iter(loader)

    def __next__(self) -> dict:
        if self._it is None:
            self._it = self._make_iter()
        batch = next(self._it)
        self.consumed += 1
        return batch

    def state_dict(self) -> dict:
        return {"consumed": self.consumed}

    def load_state_dict(self, state: dict) -> None:
        self.consumed = int(state["consumed"])
        self._it = None


def move_to_device(batch: dict, device: torch.device, channels_last: bool = False) -> dict:
    """Tensors to ``device`` (non-blocking from pinned memory on CUDA); 4D images optionally channels-last."""
    non_blocking = device.type == "cuda"
    out = {k: v.to(device, non_blocking=non_blocking) if torch.is_tensor(v) else v for k, v in batch.items()}
    if channels_last and Keys.IMAGE in out and out[Keys.IMAGE].ndim == 4:
        out[Keys.IMAGE] = out[Keys.IMAGE].contiguous(memory_format=torch.channels_last)
    return out


_STREAM_HINTS = {
    "labeled": "check data.labeled_fraction (or data.splits.labeled) and the data folder",
    "unlabeled": "a semi-supervised method needs unlabeled images: lower data.labeled_fraction (the training "
    "cases beyond it lose their labels) or add image folders to data.unlabeled_dirs",
    "source": "check data.labeled_fraction and the source data folder",
    "target": "check target.root: the target domain's training cases are its images",
}


def build_streams(cfg, method, datasets: dict, sample_aug, device, dist) -> dict[str, BatchStream]:
    """One seeded ``BatchStream`` for each stream the method asks for (``method.streams``), with the
    per-sample augmentation on the streams of ``augment.streams`` and patch sampling when ``data.patch_size``
    is set; a missing or empty split is an error that says how to fill it."""
    from weakseg.data.patches import PatchSampler, compose_sample_transforms

    t = cfg.train
    patches = PatchSampler(cfg.data.patch_size, cfg.data.patch_foreground) if cfg.data.patch_size else None
    streams = {}
    for i, name in enumerate(method.streams):
        if name not in datasets or len(datasets[name]) == 0:
            raise ValueError(
                f'method "{cfg.method.name}" needs a non-empty "{name}" split, but the data gives '
                f"{len(datasets.get(name, []))} samples; {_STREAM_HINTS.get(name, _STREAM_HINTS['labeled'])}"
            )
        streams[name] = BatchStream(
            datasets[name],
            t.stream_batch_sizes.get(name, t.batch_size),
            t.seed + 1000 * i,
            t.num_workers,
            device.type == "cuda",
            size_divisor=max(1, int(method.size_divisor)),
            transform=compose_sample_transforms(patches, sample_aug if name in cfg.augment.streams else None),
            shard=(dist.rank, dist.world),
        )
    return streams
