"""``python -m spikenas`` is the ``spikenas`` command."""

from spikenas.console import main

if __name__ == "__main__":
    main()
