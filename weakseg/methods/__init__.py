"""Training methods: each is a ``Method`` registered in ``METHODS`` and built from the config."""

from __future__ import annotations

from weakseg.config import Config
from weakseg.methods.base import BuildContext, Method, NonFiniteLossError, StepContext, make_optimizer
from weakseg.methods.params import parse_params
from weakseg.registry import Registry, check_params

__all__ = [
    "METHODS",
    "BuildContext",
    "Method",
    "NonFiniteLossError",
    "StepContext",
    "build_method",
    "check_config",
    "make_optimizer",
]

# the core's methods; plug-ins add theirs as entry points of group "weakseg.methods" (pyproject.toml)
METHODS: Registry[Method] = Registry("method", plugins="weakseg.methods")
METHODS.register_lazy("supervised", "weakseg.methods.supervised:Supervised")
METHODS.register_lazy("mean_teacher", "weakseg.methods.semi:MeanTeacher")
METHODS.register_lazy("dan", "weakseg.methods.semi:DAN")
METHODS.register_lazy("hung", "weakseg.methods.semi:Hung")
METHODS.register_lazy("fixmatch", "weakseg.methods.consistency:FixMatch")
METHODS.register_lazy("unimatch", "weakseg.methods.consistency:UniMatch")
METHODS.register_lazy("cps", "weakseg.methods.cps:CPS")
METHODS.register_lazy("bcp", "weakseg.methods.bcp:BCP")


def build_method(cfg: Config) -> Method:
    """Build ``cfg.method.name``: its ``params_class`` filled from ``cfg.method.params`` and a
    ``BuildContext`` of ``cfg``. A plug-in method without a ``params_class`` gets ``cls(cfg=cfg, **params)``
    (its keyword parameters checked by name)."""
    name = cfg.method.name
    cls = METHODS.get(name)
    if getattr(cls, "params_class", None) is None:
        check_params(f'method "{name}"', cls, cfg.method.params, ("cfg",), where="method.params")
        return cls(cfg=cfg, **cfg.method.params)
    return cls(BuildContext.from_config(cfg), parse_params(cls, cfg.method.params, name))


def check_config(cfg: Config) -> None:
    """The config check of ``method.name`` and ``method.params`` (entry point of ``weakseg.config_checks``):
    a wrong key, type or range fails at config load, before any run folder exists."""
    cls = METHODS.get(cfg.method.name)
    if getattr(cls, "params_class", None) is not None:
        parse_params(cls, cfg.method.params, cfg.method.name)
