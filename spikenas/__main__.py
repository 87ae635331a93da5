"""``python -m spikenas`` is the ``spikenas`` command."""

from spikenas.cli import main

if __name__ == "__main__":
    main()
