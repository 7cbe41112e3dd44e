"""The ``smmflow`` command line: thin dispatch to subcommands living next to their science."""

from __future__ import annotations

import importlib
import sys

#: subcommand -> (module, one-line help). Each module defines ``main(argv: list[str]) -> int``.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "enumerate": ("smmflow.cli.enumerate", "enumerate donor-first ligands from SMILES files"),
    "build": ("smmflow.cli.build", "build (and xTB-relax) [Dy(H2O)5L2] for one ligand"),
    "casscf": ("smmflow.cli.casscf", "SA-CASSCF(9,7)+SO Kramers doublets of a Dy complex"),
    "check-config": ("smmflow.cli.check_config", "check config files (YAML syntax with file:line, schema, columns)"),
    "summary": ("smmflow.cli.summary", "Markdown tables of a run's results (labels, learning curve, rounds)"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: smmflow <command> [options]\n\ncommands:")
        for name, (_, help_) in SUBCOMMANDS.items():
            print(f"  {name:<10} {help_}")
        return 0 if argv else 2
    if argv[0] in ("-V", "--version"):
        from smmflow import __version__

        print(__version__)
        return 0
    cmd = argv[0]
    if cmd not in SUBCOMMANDS:
        print(f"smmflow: unknown command {cmd!r} (try 'smmflow --help')", file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[cmd][0])
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
