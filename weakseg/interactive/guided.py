"""Guided feature modulation (Rupprecht et al. 2018, "Guide me"): the user's clicks change what a trained
segmenter outputs by modulating its feature maps between encoder and decoder, with every weight frozen.

    guide = GuidedModulation(method.net)                       # any segmenter with an encoder / MONAI skips
    logits = guide.fit(image, clicks, target=1, steps=20)      # (1, N, H, W): the guided result
    guide.reset()                                              # back to the network's own answer

At the features between encoder and decoder (``levels: all``: every map the decoder reads, since a U-Net's skips
bypass the bottleneck; ``bottleneck``: the deepest only, as in the paper), each channel c gets a scale and an
offset, ``f_c * (1 + gamma_c) + beta_c``, initialised to the identity. ``fit``
optimises only gamma and beta with Adam for ``steps`` steps: cross-entropy at discs of ``radius`` px around the
clicks (foreground clicks towards class ``target``, background clicks away from it) plus ``weight_decay`` x
(|gamma|^2 + |beta|^2), so the modulation stays small where the clicks do not ask for more. Hand-written: no
library offers feature-level guidance of an arbitrary network; forward hooks keep the network's own forward.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from weakseg.interactive.clicks import Click, click_discs

__all__ = ["GuidedModulation", "modulation_sites"]


def modulation_sites(net: nn.Module, levels: str = "all") -> list[nn.Module]:
    """Modules whose outputs are modulated. ``encoder_unet``: its encoder (``all``: every feature map it hands
    the decoder; ``bottleneck``: the deepest one). MONAI U-Nets: ``all`` = every ``SkipConnection`` (the
    features entering each decoder level), ``bottleneck`` = the innermost block. ValueError otherwise."""
    net = getattr(net, "module", net)
    encoder = getattr(net, "encoder", None)
    if isinstance(encoder, nn.Module):
        return [encoder]
    from monai.networks.layers import SkipConnection

    skips = [m for m in net.modules() if isinstance(m, SkipConnection)]
    if not skips:
        raise ValueError(
            f"guided modulation needs a segmenter with an `encoder` (encoder_unet) or MONAI skip connections "
            f"(unet, attention_unet), got {type(net).__name__}"
        )
    return skips if levels == "all" else [skips[-1].submodule]


class GuidedModulation:
    """Per-channel scales and shifts of a frozen segmenter's features between encoder and decoder, fitted to
    clicks (``levels``: ``all`` decoder inputs, or the ``bottleneck`` only as in Rupprecht et al.)."""

    def __init__(
        self,
        net: nn.Module,
        levels: str = "all",
        radius: int = 3,
        lr: float = 0.1,
        weight_decay: float = 1e-3,
    ) -> None:
        if levels not in ("all", "bottleneck"):
            raise ValueError(f'guided modulation: levels must be "all" or "bottleneck", got {levels!r}')
        self.net, self.levels = net, levels
        self.radius, self.lr, self.weight_decay = int(radius), float(lr), float(weight_decay)
        self.params: dict[tuple[int, int], tuple[Tensor, Tensor]] = {}
        self._handles = [
            m.register_forward_hook(self._hook(i)) for i, m in enumerate(modulation_sites(net, levels))
        ]

    def _scale_shift(self, key: tuple[int, int], f: Tensor) -> Tensor:
        pair = self.params.get(key)
        if pair is None or pair[0].shape[1] != f.shape[1]:
            shape = (1, f.shape[1], *[1] * (f.ndim - 2))
            pair = tuple(torch.zeros(shape, device=f.device, requires_grad=True) for _ in range(2))
            self.params[key] = pair
        gamma, beta = pair
        return f * (1 + gamma.to(f.dtype)) + beta.to(f.dtype)

    def _hook(self, site: int):
        def modulate(_module, _args, out):
            if not isinstance(out, (list, tuple)):
                return self._scale_shift((site, 0), out)
            keep = 1 if self.levels == "all" else len(out) - 1  # never the input itself (feature 0)
            moved = [f if k < keep else self._scale_shift((site, k), f) for k, f in enumerate(out)]
            return type(out)(moved)

        return modulate

    def reset(self) -> None:
        """Drop the modulation (the next forward is the network's own answer)."""
        self.params = {}

    def remove(self) -> None:
        for h in self._handles:
            h.remove()

    def fit(self, image: Tensor, clicks: list[Click], target: int, steps: int = 20) -> Tensor:
        """Logits (1, N, H, W) of ``image`` (1, C, H, W) after fitting the modulation to ``clicks``."""
        if image.ndim != 4 or image.shape[0] != 1:
            raise ValueError(
                f"guided modulation segments one 2D image (1, C, H, W), got {tuple(image.shape)}"
            )
        params = [p for p in self.net.parameters() if p.requires_grad]
        for p in params:
            p.requires_grad_(False)
        try:
            with torch.no_grad():
                self.net(image)  # creates the coefficients for this network's feature widths
            size = tuple(image.shape[2:])
            fg = torch.from_numpy(click_discs(clicks, size, self.radius, True)).to(image.device)
            bg = torch.from_numpy(click_discs(clicks, size, self.radius, False)).to(image.device)
            coeffs = [t for pair in self.params.values() for t in pair]
            opt = torch.optim.Adam(coeffs, lr=self.lr)
            for _ in range(steps if bool(fg.any() or bg.any()) else 0):
                logits = self.net(image)
                logits = (logits[0] if isinstance(logits, (list, tuple)) else logits).float()
                logp = logits.log_softmax(1)[0]
                p_target = logp[target]
                not_target = torch.log1p(-p_target.exp().clamp(max=1 - 1e-6))
                loss = -(p_target[fg].sum() + not_target[bg].sum()) / max(1, int(fg.sum() + bg.sum()))
                loss = loss + self.weight_decay * sum(t.square().sum() for t in coeffs)
                opt.zero_grad()
                loss.backward()
                opt.step()
            with torch.no_grad():
                out = self.net(image)
            return out[0] if isinstance(out, (list, tuple)) else out
        finally:
            for p in params:
                p.requires_grad_(True)
