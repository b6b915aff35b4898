"""Command line: ``python -m pdlib <command> ...`` (also installed as ``pdlib``).

Each command lives with its stage; this module only dispatches, importing a
stage when its command is asked for so that ``pdlib check-manifest`` does not
load torch.
"""

from __future__ import annotations

import importlib
import sys

#: command -> (module, function taking argv and returning an exit code)
COMMANDS = {
    "twin": ("pdlib.twin", "main"),
    "check-manifest": ("pdlib.manifest", "main"),
    "train": ("pdlib.train", "main"),
    "audit": ("pdlib.audit", "main"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"} or argv[0] not in COMMANDS:
        print("usage: pdlib {" + ",".join(COMMANDS) + "} [options]", file=sys.stderr)
        return 0 if argv and argv[0] in {"-h", "--help"} else 2
    module_name, func_name = COMMANDS[argv[0]]
    func = getattr(importlib.import_module(module_name), func_name)
    return int(func(argv[1:]) or 0)
