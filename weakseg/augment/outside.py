"""Augmentation entries from outside libraries by import path, beside the schema's own entries:

    augment:
      transforms:
        - {name: "torchio:RandomBiasField", coefficients: 0.3}       # a TorchIO transform
        - {name: "albumentations:GaussNoise", p: 0.5}                # an albumentations transform (2D)
        - {name: "mypkg.aug:PIPELINE"}                               # a ready A.Compose / MONAI Compose object
        - {name: "monai.transforms:RandGaussianNoised", keys: [image], prob: 0.5}   # a MONAI dict transform
        - {name: rotate, p: 0.5}                                     # ours, as usual

Each entry's other keys are the constructor's arguments. These transforms run per sample on the CPU, in the
loader, before the schema's own entries (whichever backend runs those). Geometric ones move the label with
the image: TorchIO gets a Subject (``image`` ScalarImage, ``label`` LabelMap), albumentations ``image`` and
``mask``, MONAI dict transforms ``{"image", "label"}`` (label with its channel axis); any other callable gets
the image tensor alone. Every random draw is seeded from (sample, draw seed) like ours: TorchIO's torch
generator, albumentations' and MONAI's own ``set_random_state``, Python's and NumPy's global generators
(restored afterwards), so a resumed run draws the same augmentations. Written here because no library
adapts the others' calling conventions to one seeded per-sample call.
"""

from __future__ import annotations

import inspect
import random
from typing import Any

import numpy as np
import torch

from weakseg.keys import Keys
from weakseg.registry import import_attr, is_import_path

__all__ = ["OutsideTransform", "is_outside", "split_outside"]


def is_outside(entry: Any) -> bool:
    return isinstance(entry, dict) and is_import_path(entry.get("name"))


def split_outside(transforms: list) -> tuple[list[dict], list]:
    """(entries by import path, the schema's own entries), each in its order."""
    return [t for t in transforms if is_outside(t)], [t for t in transforms if not is_outside(t)]


def _plain(x: Any) -> torch.Tensor:
    """A plain tensor from what a library returns (MONAI's MetaTensor, NumPy arrays)."""
    return (
        x.as_tensor()
        if hasattr(x, "as_tensor")
        else torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x)
    )


def _is_dict_transform(t: Any) -> bool:
    """A MONAI dictionary transform, or a MONAI Compose of them."""
    from monai.transforms import Compose, MapTransform

    if isinstance(t, Compose):
        return any(isinstance(x, MapTransform) for x in t.flatten().transforms)
    return isinstance(t, MapTransform)


def _build(entry: dict, where: str) -> Any:
    """A class is built with the entry's other keys; any other object (a ready pipeline such as an
    ``A.Compose`` or ``monai.transforms.Compose`` instance in the user's module) is used as it is."""
    kwargs = {k: v for k, v in entry.items() if k != "name"}
    try:
        ctor = import_attr(entry["name"], f"{where}: transform")
    except KeyError as e:  # a config value, so a ValueError (ConfigError at load)
        raise ValueError(e.args[0]) from None
    if not inspect.isclass(ctor):
        if kwargs:
            raise ValueError(
                f'{where}: "{entry["name"]}" is a ready transform object, not a class: remove its arguments '
                f"{sorted(kwargs)} (or name its class)"
            )
        return ctor
    try:
        return ctor(**kwargs)
    except TypeError as e:
        raise ValueError(f'{where}: transform "{entry["name"]}" cannot be built from {kwargs}: {e}') from e


class OutsideTransform:
    """The outside entries of ``augment.transforms`` as one seeded per-sample transform ``t(sample, seed)``."""

    def __init__(self, entries: list[dict], spatial_dims: int, where: str = "augment.transforms") -> None:
        self.names = [e["name"] for e in entries]
        self.transforms = [_build(e, where) for e in entries]
        self.dims = spatial_dims
        for name, t in zip(self.names, self.transforms):
            if type(t).__module__.startswith("albumentations") and spatial_dims != 2:
                raise ValueError(f'augment.transforms: "{name}" is an albumentations transform: 2D data only')

    def __repr__(self) -> str:
        return f"OutsideTransform({self.names})"

    def __call__(self, sample: dict, seed: int) -> dict:
        image, label = sample[Keys.IMAGE], sample.get(Keys.LABEL)
        py_state, np_state = random.getstate(), np.random.get_state()
        try:
            with torch.random.fork_rng(devices=[]):
                for i, (name, t) in enumerate(zip(self.names, self.transforms)):
                    s = (seed + 7919 * i) % 2**32
                    torch.manual_seed(s)
                    random.seed(s)
                    np.random.seed(s)
                    image, label = self._apply(name, t, image, label, s)
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)
        out = dict(sample)
        out[Keys.IMAGE] = image.float().contiguous()
        if label is not None:
            out[Keys.LABEL] = label.round().long().contiguous() if label.is_floating_point() else label.long()
        return out

    def _apply(self, name: str, t: Any, image: torch.Tensor, label: torch.Tensor | None, seed: int):
        lib = type(t).__module__.split(".")[0]  # the library the transform object comes from
        flat = self.dims == 2
        if lib == "torchio":
            import torchio as tio

            img = image[..., None] if flat else image
            parts = {"image": tio.ScalarImage(tensor=img.float())}
            if label is not None:
                lab = label[None, ..., None] if flat else label[None]
                parts["label"] = tio.LabelMap(tensor=lab)
            out = t(tio.Subject(**parts))
            new_img = out["image"].data[..., 0] if flat else out["image"].data
            new_lab = (
                None if label is None else (out["label"].data[0, ..., 0] if flat else out["label"].data[0])
            )
            return new_img, new_lab
        if lib == "albumentations":
            if hasattr(t, "set_random_state"):
                t.set_random_state(np.random.default_rng(seed), random.Random(seed))
            hwc = image.permute(1, 2, 0).numpy()
            kwargs = {"image": hwc} if label is None else {"image": hwc, "mask": label.numpy()}
            out = t(**kwargs)
            new_lab = None if label is None else torch.as_tensor(np.asarray(out["mask"]))
            return torch.as_tensor(np.asarray(out["image"])).permute(2, 0, 1), new_lab
        if lib == "monai" and _is_dict_transform(t):
            if hasattr(t, "set_random_state"):
                t.set_random_state(seed=seed)
            data = {"image": image} if label is None else {"image": image, "label": label[None]}
            out = t(data)
            new_lab = None if label is None else _plain(out["label"])[0]
            return _plain(out["image"]), new_lab
        if hasattr(t, "set_random_state"):
            t.set_random_state(seed=seed)
        return _plain(t(image)), label  # any other callable: an intensity transform of the image
