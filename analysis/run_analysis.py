"""``python -m analysis.run_analysis --input_dir DIR --output_dir OUT``: the spec's command.

Same as ``sweeplab analyze --input_dir DIR --output_dir OUT``.
"""

import sys

from sweeplab.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["analyze", *sys.argv[1:]]))
