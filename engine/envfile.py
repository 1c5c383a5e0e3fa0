"""``--env-file``: Docker's env-file grammar (docker/cli opts/envfile.go, 20.10).

One ``NAME=value`` a line, taken literally (no quotes, no expansion); blank lines and
lines starting with ``#`` are skipped; a bare ``NAME`` takes the caller's value and is
left out when the caller has none. The files' entries come before ``-e``, so ``-e``
overrides them, as in Docker.
"""

from __future__ import annotations

import os

from .errors import InvalidInput

_WHITESPACE = " \t"


def read(path: str) -> list[str]:
    """The ``NAME=value`` entries of one env file; a missing or malformed file is a
    one-line error (exit code 125, nothing created)."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise InvalidInput(f"open {path}: {(e.strerror or str(e)).lower()}", 125) from None
    out: list[str] = []
    for n, bline in enumerate(raw.split(b"\n"), 1):
        if n == 1:
            bline = bline.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte order mark
        try:
            line = bline.decode("utf-8").removesuffix("\r")
        except UnicodeDecodeError as e:
            raise InvalidInput(
                f"env file {path} contains invalid utf8 bytes at line {n}: {e.reason}", 125
            ) from None
        text = line.lstrip(_WHITESPACE)
        if not text or text.startswith("#"):
            continue
        name, eq, value = text.partition("=")
        if not name:
            raise InvalidInput(f"no variable name on line '{line}'", 125)
        if any(c in name for c in _WHITESPACE):
            raise InvalidInput(
                f"poorly formatted environment: variable '{name}' contains whitespaces", 125
            )
        if eq:
            out.append(f"{name}={value}")
        elif name in os.environ:
            out.append(f"{name}={os.environ[name]}")
    return out


def read_all(paths: list[str]) -> list[str]:
    return [entry for path in paths for entry in read(path)]
