"""weakseg: medical image segmentation with scarce or cross-modality labels, on one trainer.

Public API (imported lazily, so ``import weakseg`` stays light):
``load_config``, ``build_method``, ``Trainer``, ``evaluate``, ``predict``.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"
__all__ = ["Trainer", "build_method", "evaluate", "load_config", "predict"]

_LAZY = {
    "load_config": "weakseg.config",
    "build_method": "weakseg.methods",
    "Trainer": "weakseg.engine.trainer",
    "evaluate": "weakseg.api",
    "predict": "weakseg.api",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'weakseg' has no attribute {name!r}")
