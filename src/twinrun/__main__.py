"""``python -m twinrun`` is the ``twinrun`` command."""

import sys

from twinrun.cli import main

sys.exit(main())
