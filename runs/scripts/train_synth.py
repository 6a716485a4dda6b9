"""``python -m runs.scripts.train_synth [--flags]``: the spec's command for one run.

Same as ``sweeplab run implicit-bias [--flags]``.
"""

import sys

from sweeplab.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["run", "implicit-bias", *sys.argv[1:]]))
