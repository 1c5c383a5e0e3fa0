"""The one exception type of pydock.cgroupfs.

The CLI prints ``str(exc)`` as is, so every message is a single line that names the file
or the cgroup involved.
"""

from __future__ import annotations


class CgroupError(Exception):
    """A cgroup operation failed; the message is one line, fit for the user."""
