"""The command line that runs pydock's own code in a new process.

pydock runs as root, usually started from a directory and an environment the caller
chose. A Python child started plainly (``python -m pydock...``) would put the working
directory first on ``sys.path`` and honour ``PYTHONPATH``, ``PYTHONSTARTUP`` and
``sitecustomize`` found there: a user who can write the directory root runs pydock in
would run code as root. ``-I`` (isolated mode: -E, -s and -P together, Python >= 3.11)
leaves only the interpreter's own library and its site-packages, where pydock is
installed. Every Python process pydock starts builds its argv here.
"""

from __future__ import annotations

import sys


def module(name: str, *args: str) -> list[str]:
    """argv running module ``name`` of the installation (``site`` loaded: an editable or
    regular install is found through it)."""
    return [sys.executable, "-I", "-m", name, *args]


def script(path: str, *args: str) -> list[str]:
    """argv running the file ``path`` without ``site``: the lean processes (the monitor,
    the exec reaper) that import no package, only builtins and the stdlib."""
    return [sys.executable, "-I", "-S", path, *args]
