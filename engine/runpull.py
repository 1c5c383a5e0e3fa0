"""``run``/``create --pull always|missing|never``: pulling the image a container needs.

Docker does this in its CLI, not the daemon (cli/command/container/create.go): ``always``
pulls before the create; ``missing`` (the default) tries the create and, when the image is
not there, says ``Unable to find image 'REF' locally`` on stderr, pulls with the progress
``docker pull`` shows (to stderr: stdout is the container's, or the id ``create`` prints)
and creates again; ``never`` reports the daemon's ``No such image``. A failed pull leaves
the store as it was (the puller rolls back what it applied).

Only :func:`create` is imported on the run path, and the distribution package only when a
pull happens.
"""

from __future__ import annotations

from .errors import EngineError, ImageNotFound

POLICIES = ("always", "missing", "never")


def check_policy(policy: str) -> None:
    """validatePullOpt: refused before anything else happens (exit 125)."""
    if policy not in POLICIES:
        raise EngineError(
            f'invalid pull option: \'{policy}\': must be one of "always", "missing" or "never"',
            125,
        )


def _named(image: str):  # -> distribution Reference | None
    """The reference to pull, or None for an image id (which no registry serves)."""
    hexpart = image.removeprefix("sha256:")
    if len(hexpart) == 64 and all(c in "0123456789abcdef" for c in hexpart):
        return None
    from .distribution import reference as refmod

    return refmod.parse(image)


def pull(engine, image: str, *, quiet: bool = False) -> None:
    """Pull ``image`` for a run, progress on stderr (none when ``quiet``); errors as
    Docker's daemon words them."""
    import io
    import sys

    from .distribution.progress import Progress
    from .distribution.pull import Puller

    ref = _named(image)
    if ref is None:
        raise EngineError(f"Error response from daemon: No such image: {image}", 125)
    puller = Puller(engine.images, engine.driver(), engine.root,
                    progress=Progress(io.StringIO() if quiet else sys.stderr))  # fmt: skip
    try:
        puller.pull(ref)
    except EngineError as e:
        raise EngineError(f"Error response from daemon: {e}", 125) from None


def create(engine, image: str, policy: str, *, quiet: bool = False, **kw) -> dict:
    """engine.create with Docker's pull policy applied; ``quiet`` (``-q``): no word of
    the image's fetching, as Docker's CLI (create.go prints nothing then)."""
    from .cliutil import eprint

    if policy == "always":
        pull(engine, image, quiet=quiet)
    # ``missing`` builds the embedded default image (busybox) when it is not there; the
    # progress callback is what asks engine.create for that
    say = (_silent if quiet else eprint) if policy == "missing" else None
    try:
        return engine.create(image, progress=say, **kw)
    except ImageNotFound:
        if policy != "missing" or _named(image) is None:
            raise EngineError(
                f"Error response from daemon: No such image: {_familiar(image)}", 125
            ) from None
    if not quiet:
        eprint(f"Unable to find image '{_familiar(image)}' locally")
    pull(engine, image, quiet=quiet)
    return engine.create(image, **kw)


def _silent(_msg: str) -> None:
    """``-q``: the default image is built without a word."""


def _familiar(image: str) -> str:
    """``busybox`` -> ``busybox:latest``, as Docker names the image it looked for."""
    ref = _named(image)
    return ref.familiar() if ref is not None else image
