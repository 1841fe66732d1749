"""Reading user files: one reader, one size limit, one wording of what is wrong in a file.

Every file doorbuster reads that a user can hand it (a scenario, ``--config``, a run
directory's files for ``report``) goes through :func:`read_text`, so bad bytes, a directory,
a missing, unreadable or oversized file all give a :class:`ConfigError` that starts with the
file's path::

    >>> from pathlib import Path
    >>> read_text(Path("/nonexistent/s.yaml"))
    Traceback (most recent call last):
    ...
    model.errors.ConfigError: /nonexistent/s.yaml: no such file
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from model.errors import ConfigError

__all__ = [
    "MAX_FILE_BYTES",
    "parsed_json_lines",
    "read_json",
    "read_json_lines",
    "read_text",
    "read_yaml",
    "shipped",
    "shipped_or_path",
]

# One limit for every file: room for a long run's request log, none for a file given by
# mistake (a disk image, /dev/zero) that would fill the memory before anything is said.
MAX_FILE_BYTES = 256 * 2**20

T = TypeVar("T")


def shipped(directory: Path) -> list[str]:
    """The names of the YAML files shipped in ``directory`` (scenarios/, systems/)."""
    return sorted(p.stem for p in directory.glob("*.yaml"))


def shipped_or_path(name_or_path: str, directory: Path, *, kind: str) -> Path:
    """A shipped file by its name (``black-friday``), or any file by its path; ConfigError
    naming what is shipped when neither exists."""
    path = Path(name_or_path)
    if not path.suffix and not path.exists():
        path = directory / f"{name_or_path}.yaml"
        if not path.exists():
            raise ConfigError(
                f"no {kind} {name_or_path!r}; shipped: {', '.join(shipped(directory))}, "
                "or give a path to a YAML file"
            )
    return path


def read_text(path: Path) -> str:
    """The file's whole text (UTF-8), or ConfigError naming the file and what was wrong."""
    try:
        with path.open("rb") as fh:
            too_big = os.fstat(fh.fileno()).st_size > MAX_FILE_BYTES
            # Bounded even for what has no size (a pipe, /dev/zero).
            data = b"" if too_big else fh.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: can not read it ({exc.strerror or exc})") from exc
    if too_big or len(data) > MAX_FILE_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_FILE_BYTES // 2**20} MiB, the most doorbuster reads")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from None


def read_yaml(path: Path) -> Any:
    """The parsed YAML file, or ConfigError naming the file and why it could not be read."""
    text = read_text(path)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    except ValueError as exc:  # a well-formed but impossible date, like 2024-13-45
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    except RecursionError:
        raise ConfigError(f"{path}: not valid YAML: nested too deeply") from None


def read_json(path: Path) -> Any:
    """The parsed JSON file, or ConfigError naming the file and why it could not be read."""
    text = read_text(path)
    try:
        return _json_value(text)
    except ValueError as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc}") from exc


def read_json_lines(path: Path, parse: Callable[[Any], T], *, what: str) -> list[T]:
    """Each line of a JSON-lines file, parsed as JSON and then by ``parse``; ConfigError
    naming the file and the line when one is not JSON or ``parse`` refuses it (with
    ValueError, TypeError, KeyError or IndexError): ``path: line 3: not what (why)``."""
    return parsed_json_lines(read_text(path), parse, what=what, where=path)


def parsed_json_lines(text: str, parse: Callable[[Any], T], *, what: str, where: Path) -> list[T]:
    """:func:`read_json_lines` of text already read from ``where`` (the file errors name)."""
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            records.append(parse(_json_value(line)))
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise ConfigError(f"{where}: line {number}: not {what} ({exc})") from exc
    return records


def _json_value(text: str) -> Any:
    """``json.loads``, with a document nested too deeply as a ValueError like any other."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("nested too deeply") from None
