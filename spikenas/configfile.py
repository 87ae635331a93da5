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
        if Path(path).is_file() and Path(path).stat().st_size > MAX_CONFIG_BYTES:
            raise SpikenasError(f"config {path} is larger than {MAX_CONFIG_BYTES >> 20} MiB: not a config")
        with open(path, "rb") as handle:  # /dev/zero and its kind: never read without end
            raw = handle.read(MAX_CONFIG_BYTES + 1)
        if len(raw) > MAX_CONFIG_BYTES:
            raise SpikenasError(f"config {path} is larger than {MAX_CONFIG_BYTES >> 20} MiB: not a config")
        data = yaml.safe_load(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise SpikenasError(f"config {path} is not UTF-8 text (byte {exc.start}): is it a config file?") from None
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


MAX_CONFIG_BYTES = 16 << 20  # a config is kilobytes; 16 MiB leaves room for a genotype table

# options whose value may be a YAML file of that group's settings (jsonargparse reads it)
FILE_OPTIONS = ("--config", "-c", "--trainer", "--model", "--data", "--checkpoint", "--space", "--studies", "--proxy")


def check_config_args(argv: list[str]) -> None:
    """Read every file given to ``--config``/``-c`` in ``argv`` (``--config F`` or
    ``--config=F``), and to a settings group (``--trainer F``, ``--model F``, ...) where the value
    names a file, so each bad file is one line; an inline mapping (``'{...}'``) and a class
    name are left to jsonargparse."""
    for i, arg in enumerate(argv):
        option, _, value = arg.partition("=")
        if option not in FILE_OPTIONS:
            continue
        if not value:
            if i + 1 >= len(argv):
                continue
            value = argv[i + 1]
        is_file_option = option in ("--config", "-c")
        if value.lstrip().startswith(("{", "[")) or not (is_file_option or Path(value).exists()):
            continue
        read_config(value)
