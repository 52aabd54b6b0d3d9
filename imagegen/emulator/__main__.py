"""``python -m imagegen.emulator``: the same as ``imagegen emulator``."""

from __future__ import annotations

from .cli import main

raise SystemExit(main())
