"""``python -m zoo <command> [arguments]``: runs ``zoo.cli.<command>``; ``python -m zoo`` alone
(or ``--help``) lists the commands."""

from __future__ import annotations

import importlib
import sys

from zoo.cli import COMMANDS


def usage() -> str:
    width = max(map(len, COMMANDS))
    rows = "\n".join(f"  {name:<{width}}  {what}" for name, what in COMMANDS.items())
    return (f"usage: python -m zoo <command> [arguments]   (python -m zoo <command> --help for its own)\n\n"
            f"commands:\n{rows}")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return
    name, args = argv[0], argv[1:]
    if name not in COMMANDS:
        sys.exit(f"python -m zoo: no command {name!r}; expected one of {', '.join(COMMANDS)}")
    # Lightning starts each further DDP process from sys.argv (the module's name under -m, else
    # argv[0]), so only -m's argv[0], unused then, becomes the name --help shows
    main_module = sys.modules["__main__"]
    if getattr(main_module, "__spec__", None) is not None:
        sys.argv[0] = f"python -m zoo {name}"
    importlib.import_module(f"zoo.cli.{name}").run(args)


if __name__ == "__main__":
    main()
