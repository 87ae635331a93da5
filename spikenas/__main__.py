"""``python -m spikenas`` is the ``spikenas`` command."""

from spikenas.app.console import main

if __name__ == "__main__":
    main()
