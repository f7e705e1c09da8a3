"""``python -m imprint_core.cli``: the same as the ``imprint`` command."""

from . import main

raise SystemExit(main())
