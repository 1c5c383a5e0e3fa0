"""Docker's pull/push progress: one line per layer, redrawn in place on a terminal.

On a terminal each layer keeps its own line (``a3ed95caeb02: Downloading  1.2MB/3.4MB``),
redrawn with ANSI cursor moves as Docker's jsonmessage does; otherwise every status change
is printed once as a plain line, which is what logs and tests want.
"""

from __future__ import annotations

import sys
import threading
from typing import TextIO

from ..format import human_size


class Progress:
    def __init__(self, out: TextIO | None = None, tty: bool | None = None) -> None:
        self.out = out or sys.stdout
        self.tty = self.out.isatty() if tty is None else tty
        self.lock = threading.Lock()
        self.order: list[str] = []
        self.lines: dict[str, str] = {}
        self.last: dict[str, str] = {}

    def line(self, text: str) -> None:
        """A line that is not about one layer (``Digest: ...``)."""
        with self.lock:
            print(text, file=self.out, flush=True)
            if self.tty:
                self.order.clear()  # the layer block above is final now

    def status(self, layer: str, text: str, current: int = 0, total: int = 0) -> None:
        with self.lock:
            if not self.tty:
                if self.last.get(layer) != text:  # plain mode: one line per change
                    self.last[layer] = text
                    print(f"{layer}: {text}", file=self.out, flush=True)
                return
            shown = f"{layer}: {text}"
            if total:
                shown += f" {_bar(current, total)} {human_size(current)}/{human_size(total)}"
            if layer not in self.lines or layer not in self.order:
                self.order.append(layer)
                self.lines[layer] = shown
                print(shown, file=self.out, flush=True)
                return
            self.lines[layer] = shown
            up = len(self.order) - self.order.index(layer)
            self.out.write(f"\x1b[{up}A\r\x1b[2K{shown}\x1b[{up}B\r")
            self.out.flush()


def _bar(current: int, total: int, width: int = 50) -> str:
    done = min(width, int(width * current / total)) if total else 0
    return "[" + "=" * max(0, done - 1) + (">" if done else "") + " " * (width - done) + "]"
