"""Engine errors carry Docker's exit codes so the CLI can print one line and exit right.

Docker's CLI exits 125 when the engine itself fails, 126 when the container command cannot
be invoked and 127 when it cannot be found; other commands (rm, rmi, inspect...) exit 1.
"""

from __future__ import annotations


class EngineError(Exception):
    """A failure the user should see as one line; ``exit_code`` is what the CLI returns."""

    exit_code = 1

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class NotFound(EngineError):
    """No such image / container / layer."""


class ImageNotFound(NotFound):
    """``create`` found no image for its reference: the CLI may pull it (``--pull``)."""


class Conflict(EngineError):
    """The operation would break something in use (a name taken, an image used)."""


class InvalidInput(EngineError):
    """Bad arguments or a broken/hostile archive."""
