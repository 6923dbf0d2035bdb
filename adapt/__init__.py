"""Cross-modality transfer (domain adaptation) on the weakseg trainer: CycleGAN and CycleGAN + joint
segmentation (SynSeg-Net), with ``translate`` for the two-stage route (docs/adapt.md). Methods register
lazily in ``weakseg.methods.METHODS`` ("cyclegan"); the GAN networks and the update order come from the
core (``weakseg.nets.gan``, ``weakseg.methods.gan_steps``).
"""

from __future__ import annotations

from adapt.cyclegan import CycleGAN

__all__ = ["CycleGAN"]
