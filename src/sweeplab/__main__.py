"""``python -m sweeplab`` is the ``sweeplab`` command."""

import sys

from sweeplab.cli.main import main

sys.exit(main())
