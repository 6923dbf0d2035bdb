"""YAML -> typed dataclasses. Unknown keys and wrongly typed values are errors that name the key.

    cfg = load_config("configs/demo.yaml", overrides=["train.max_steps=10", "optim.lr=3e-4"])

Sections: ``data``, ``model``, ``loss``, ``method``, ``optim``, ``train``, and the optional ``target`` (a second
data domain for domain adaptation, see ``Config.target``). Free-form option dicts
(``model.params``, ``loss.params``, ``method.params``) are passed to the registered constructor, which
validates them itself.
"""

from __future__ import annotations

from weakseg.config import load, schema
from weakseg.config.load import *  # noqa: F403  (the public names: load.__all__, schema.__all__)
from weakseg.config.schema import *  # noqa: F403

__all__ = [*schema.__all__, *load.__all__]
