"""``weakseg <subcommand>``: train, evaluate, predict, list, augment (preview), serve, demo, and the
subcommands of installed plug-ins (``synth`` from gans/, ``adapt`` from adapt/: entry points of group
``weakseg.commands``, each a ``register(subparsers)`` that adds its parser and ``handler``).

Conventions of every subcommand: the positional arguments are what is read (a config, a checkpoint, an input
folder); ``--out``/``output`` is what is written, never replaced without ``--overwrite``; ``--set KEY=VALUE``
overrides a config value; errors in user input end with exit status 1 and a message naming the file, key or
value, anything else with status 2 ("probably a bug").
"""

from __future__ import annotations

import argparse
import os
import sys

from weakseg.cli.commands import add_core_commands
from weakseg.cli.configs import add_config_command
from weakseg.cli.demo import add_demo_command, demo_adapt_configs, demo_config
from weakseg.registry import plugin_entry_points

__all__ = ["build_parser", "demo_adapt_configs", "demo_config", "main"]


def build_parser() -> argparse.ArgumentParser:
    from weakseg import __version__

    ap = argparse.ArgumentParser(prog="weakseg", description=__doc__.split("\n\n")[0])
    ap.add_argument("--version", action="version", version=f"weakseg {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)
    add_core_commands(sub)
    add_config_command(sub)
    add_demo_command(sub)
    for ep in plugin_entry_points("weakseg.commands"):  # light modules: argparse only, work imported lazily
        ep.load()(sub)
    try:  # shell completion when argcomplete is installed (activate-global-python-argcomplete, or
        import argcomplete  # eval "$(register-python-argcomplete weakseg)")

        argcomplete.autocomplete(ap)
    except ImportError:
        pass
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except BrokenPipeError:  # the reader went away (weakseg list ... | head): nothing to report
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - Python flushes stderr at exit
        return 0
    except KeyboardInterrupt:
        print("interrupted; the last checkpoint is kept", file=sys.stderr)
        return 130
    except (ValueError, KeyError, OSError, RuntimeError) as e:
        if os.environ.get("WEAKSEG_TRACEBACK"):  # developers: see the whole stack
            raise
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"weakseg {args.command}: error: {msg}", file=sys.stderr)
        return 1
    except Exception as e:  # not an input problem we know of: a bug in weakseg (or a library under it)
        if os.environ.get("WEAKSEG_TRACEBACK"):
            raise
        print(
            f"weakseg {args.command}: internal error, probably a bug in weakseg: {type(e).__name__}: {e}\n"
            "Please report it with the command you ran; WEAKSEG_TRACEBACK=1 shows the whole stack.",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
