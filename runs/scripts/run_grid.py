"""``python -m runs.scripts.run_grid --config CONFIG --tag NAME``: the spec's grid command.

Same as ``sweeplab grid CONFIG --tag NAME``.
"""

import sys

from sweeplab.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["grid", *sys.argv[1:]]))
