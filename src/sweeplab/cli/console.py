"""The one place sweeplab talks to the terminal: a rich console and log handler."""

from __future__ import annotations

import logging
import sys

from rich.console import Console
from rich.logging import RichHandler

console = Console(soft_wrap=True)  # long paths stay whole for copy and paste
err_console = Console(stderr=True, soft_wrap=True)


def setup_logging(verbose: bool = False) -> None:
    """Show sweeplab's warnings (and info with ``verbose``) on stderr."""
    logger = logging.getLogger("sweeplab")
    if any(getattr(h, "_sweeplab_console", False) for h in logger.handlers):
        return
    handler = RichHandler(console=err_console, show_time=False, show_path=False)
    handler.setLevel(logging.INFO if verbose else logging.WARNING)
    handler._sweeplab_console = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logging.captureWarnings(True)


def say(text: str) -> None:
    """Print one plain line (no markup, no highlighting, never wrapped)."""
    console.print(text, highlight=False, markup=False, soft_wrap=True)


def fail(message: str, code: int = 2) -> int:
    """Print ``sweeplab: error: <message>`` as one line on stderr; return ``code``."""
    sys.stderr.write(f"sweeplab: error: {' '.join(str(message).split())}\n")
    return code


class Interrupted(KeyboardInterrupt):
    """An interruption the CLI reports with what to run next (``hint``)."""

    def __init__(self, hint: str):
        super().__init__(hint)
        self.hint = hint
