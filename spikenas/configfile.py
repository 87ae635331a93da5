"""Reading a ``--config`` file with one-line errors (a missing file, bad YAML, not a mapping).

jsonargparse reports these after a hundred lines of usage; ``spikenas`` checks every
``--config`` file first (:func:`check_config_args`) and says what is wrong in one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from spikenas.errors import SpikenasError


def read_config(path: str) -> dict[str, Any]:
    """The mapping of settings in the YAML file ``path``."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise SpikenasError(f"cannot read config {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpikenasError(f"config {path} is not valid YAML: {problem}{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SpikenasError(f"config {path} is a YAML {type(data).__name__}, not a mapping of settings (key: value)")
    return data


def check_config_args(argv: list[str]) -> None:
    """Read every file given to ``--config`` in ``argv`` (``--config F`` or ``--config=F``);
    an inline mapping (``--config '{...}'``) is left to jsonargparse."""
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith("--config="):
            value = arg.split("=", 1)[1]
        else:
            continue
        if not value.lstrip().startswith("{"):
            read_config(value)
