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
    "train": ("pdlib.runs", "main"),
    "audit": ("pdlib.audit", "main"),
    "fetch-weights": ("pdlib.cli", "fetch_weights_main"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"} or argv[0] not in COMMANDS:
        print("usage: pdlib {" + ",".join(COMMANDS) + "} [options]", file=sys.stderr)
        return 0 if argv and argv[0] in {"-h", "--help"} else 2
    module_name, func_name = COMMANDS[argv[0]]
    func = getattr(importlib.import_module(module_name), func_name)
    return int(func(argv[1:]) or 0)


def fetch_weights_main(argv: list[str]) -> int:
    """``python -m pdlib fetch-weights --profile paper DIR [--source FOLDER] [--arch NAME ...]``.

    Stores every weight file the profile's architectures start from in
    ``DIR`` (see :func:`pdlib.models.fetch_weights`); afterwards
    ``PDLIB_WEIGHTS=DIR`` makes ``pretrained=True`` load from there without
    network access.
    """
    import argparse

    from pdlib import models

    parser = argparse.ArgumentParser(
        prog="pdlib fetch-weights",
        description="Store the ImageNet weight files a profile needs, for offline use with PDLIB_WEIGHTS=DIR.")
    parser.add_argument("out", metavar="DIR", help="folder that receives <timm name>.safetensors files")
    parser.add_argument("--profile", default="paper", choices=sorted(models.ARCHS))
    parser.add_argument("--source", default=None,
                        help="copy from this folder of weight files instead of the Hugging Face hub (or its cache)")
    parser.add_argument("--arch", action="append", default=None,
                        help="only this architecture of the profile (repeatable)")
    args = parser.parse_args(argv)
    if args.arch:
        unknown = [a for a in args.arch if a not in models.ARCHS[args.profile]]
        if unknown:
            parser.error(f"not architectures of profile {args.profile}: {unknown}")
    try:
        files = models.fetch_weights(args.profile, args.out, source=args.source, archs=args.arch)
    except models.PretrainedWeightsUnavailable as exc:
        print(f"pdlib fetch-weights: {exc}", file=sys.stderr)
        return 1
    for path in files:
        print(path)
    if not files:
        print(f"profile {args.profile} starts from no hub weights; nothing to fetch", file=sys.stderr)
    else:
        print(f"{len(files)} weight file(s) in {args.out}; use them with {models.WEIGHTS_ENV}={args.out}",
              file=sys.stderr)
    return 0
