"""``python -m imagegen`` is the ``imagegen`` command."""

import sys

from .cli import main

sys.exit(main())
