"""``python -m smmflow.cli``: the same as the ``smmflow`` command."""

from smmflow.cli import main

raise SystemExit(main())
