"""`python -m a124_core ...`: see a124_core/cli.py."""

import sys

from .cli import main

sys.exit(main())
