"""pydock.bench: the benchmark harness (console script ``bench``).

Every report is one JSON document with a versioned schema (see SCHEMA.md next to this
file), optionally rendered as a Markdown table and a PNG plot. numpy computes the
statistics; matplotlib (the ``bench`` extra) is imported only when a plot is asked for.
"""

from __future__ import annotations

#: Bumped whenever a field changes meaning or disappears (adding fields keeps it).
SCHEMA_VERSION = 1
