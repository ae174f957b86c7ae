"""``python -m clearhouse.cli``: the same command as ``clearhouse``."""

import sys

from clearhouse.cli import main

sys.exit(main())
