"""Synthetic labeled data (survey section III-A): ``cgan`` (label map -> image, pix2pix; optionally with the
image's context, Mahapatra et al.) and ``dual_gan`` (noise -> label map -> image, Guibas et al.), registered as
methods of the one trainer; ``gans.generate`` writes datasets, ``gans.checks`` measures authenticity."""
