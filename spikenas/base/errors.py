"""The one exception type users see: its message is a single line naming the culprit."""


class SpikenasError(Exception):
    """Bad input or a failing plugin. ``str(error)`` is one line that names what is wrong."""
