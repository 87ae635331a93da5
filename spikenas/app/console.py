"""The ``spikenas`` console script (and ``python -m spikenas``).

Loading torch and Lightning takes seconds; a Ctrl-C meanwhile ends with spikenas's one line and
status 130, as it does once a command runs (:func:`spikenas.app.cli.main`), not with a traceback
from deep inside an import.
"""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from spikenas.app.cli import main as run
    except KeyboardInterrupt:
        print("spikenas: interrupted while starting; nothing ran", file=sys.stderr)
        sys.exit(130)
    run()
