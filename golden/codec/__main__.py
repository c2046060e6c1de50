"""``python -m golden.codec``: see :mod:`golden.codec.cli`."""

import sys

from .cli import main

sys.exit(main())
