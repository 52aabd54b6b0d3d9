"""``python -m imagegen.bench``: see :mod:`imagegen.bench`."""

import sys

from . import main

sys.exit(main())
