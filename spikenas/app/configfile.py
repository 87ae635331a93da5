"""The command line's files and values, checked before jsonargparse sees them, in one line each.

jsonargparse reports a bad config file after a hundred lines of usage, and imports a
``class_path`` before checking it; ``spikenas`` reads every config file first
(:func:`check_config_args`: a missing file, bad YAML, not UTF-8, not a mapping, over 16 MiB),
refuses class paths into the standard library before anything imports them, and turns
jsonargparse's own multi-line errors into one line (:func:`one_line`).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import yaml

from spikenas.base.errors import SpikenasError


def read_config(path: str) -> dict[str, Any]:
    """The mapping of settings in the YAML file ``path``."""
    try:
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
        check_class_paths(read_config(value), value)
    for i, arg in enumerate(argv):
        option, _, value = arg.partition("=")
        if option.startswith("--") and (option.endswith(".class_path") or option in CLASS_OPTIONS):
            if not value and i + 1 < len(argv):
                value = argv[i + 1]
            if not value.lstrip().startswith(("{", "[")):
                check_class_path(value, option)


# options whose value may be a class path (a subclass chosen by name)
CLASS_OPTIONS = ("--data", "--model.optimizer", "--model.scheduler", "--trainer.logger", "--trainer.callbacks",
                 "--trainer.callbacks+", "--trainer.strategy", "--trainer.plugins", "--trainer.profiler")


def check_class_path(path: str, where: str) -> None:
    """Refuse, before anything imports it, a dotted class path into Python's standard library:
    no spikenas component lives there, and importing some of its modules acts (``this``,
    ``antigravity``)."""
    top = path.strip().split(".")[0]
    if "." in path and top in sys.stdlib_module_names:
        raise SpikenasError(f"{where} {path!r} is in Python's standard library ({top}), not a spikenas component: "
                            "refused before importing it")


def check_class_paths(data: object, where: str) -> None:
    """:func:`check_class_path` on every ``class_path`` value of a config's mapping, however nested."""
    if isinstance(data, dict):
        for key, value in data.items():
            if key == "class_path" and isinstance(value, str):
                check_class_path(value, f"class_path in {where}")
            else:
                check_class_paths(value, where)
    elif isinstance(data, list):
        for value in data:
            check_class_paths(value, where)


def one_line(message: str) -> str:
    """jsonargparse's error ``message`` (often a nested, many-line report) as one line: the
    setting it is about and the innermost reason."""
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    if len(lines) <= 1:
        return lines[0] if lines else "invalid arguments"
    keys = [m.group(1) for line in lines if (m := re.match(r'Parser key "([^"]+)":', line))]
    headers = r'(- )?(Parser key|Does not validate|Subtypes:|Errors:|Given value|Expected a <class .NoneType.>|Problem with given .*:$)'
    reasons = [line.lstrip("- ") for line in lines if not re.match(headers, line)]
    reason = " ".join(reasons[:2]) if reasons else lines[-1]
    return f"{'.'.join(keys)}: {reason}" if keys else reason
