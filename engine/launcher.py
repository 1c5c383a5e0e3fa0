"""pydock's launcher: the ``pydock`` command as dev/setup.sh installs it.

pip's console script starts the interpreter with ``site``: ~2 ms of every ``pydock``
start go to importing ``os`` and what it pulls in, reading ``pyvenv.cfg`` and ``.pth``
files, and Debian's ``sitecustomize`` (which tries to import apport's hook). The client
of a served ``run`` (engine/client.py) needs none of it. The launcher is the same three
lines run by ``python -IS``:

* ``-S``: no ``site``; the launcher puts pydock's install directory on ``sys.path``
  itself. The fallback CLI needs no more: its dependencies are installed beside it.
* ``-I``: isolated; neither the working directory nor ``PYTHON*`` variables can change
  which code runs as root (pip's script honours both).

``python -m pydock.engine.launcher PATH`` writes it over the console script at ``PATH``
(atomically). A later ``pip install`` puts pip's script back, which works the same, slower.
"""

from __future__ import annotations

import os
import sys
import sysconfig

#: the kernel reads at most this much of a ``#!`` line (BINPRM_BUF_SIZE, Linux >= 5.1)
_SHEBANG_MAX = 255


def search_path() -> list[str]:
    """Where pydock and its dependencies are installed: the directory holding the
    ``pydock`` package first (as ``site`` would have found it), then the install scheme's
    library directories. ValueError for an editable install."""
    import pydock

    package = os.path.dirname(os.path.abspath(pydock.__file__))
    if os.path.dirname(os.path.abspath(__file__)) != os.path.join(package, "engine"):
        # an editable install maps pydock.engine to the checkout with an import hook that
        # a .pth file installs: without site, there is none
        raise ValueError("pydock is an editable install: its import hook needs site")
    dirs = [os.path.dirname(package)]
    for key in ("purelib", "platlib"):
        d = sysconfig.get_paths()[key]
        if d not in dirs:
            dirs.append(d)
    return dirs


def script(python: str | None = None) -> str:
    """The launcher's text, for the interpreter ``python`` (default: this one)."""
    python = python or sys.executable
    line = f"#!{python} -IS"
    if len(line) > _SHEBANG_MAX or any(c.isspace() for c in python):
        raise ValueError(f"{python!r} cannot be named on a #! line")
    return (
        f"{line}\n"
        "# pydock's launcher (engine/launcher.py): no site, no working directory on sys.path\n"
        "import sys\n"
        f"sys.path += {search_path()!r}\n"
        "from pydock.engine.client import entry\n"
        "entry()\n"
    )


def install(path: str, python: str | None = None) -> None:
    """Write the launcher to ``path`` (mode 0755), replacing what is there atomically."""
    text = script(python)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o755)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m pydock.engine.launcher PATH", file=sys.stderr)
        return 2
    try:
        install(argv[0])
    except (OSError, ValueError) as e:
        print(f"launcher: {e}; keeping {argv[0]} as it is", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
