"""Progress of long CLI steps on stderr.

On a terminal, one line redrawn in place, at most five times a second: done/total, rate,
batches, time left. Elsewhere (CI logs, pipes, Dagster), nothing until the stage ends, then one
line for the stage. Nothing ever goes to stdout, so the commands' own output stays parseable.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO

from spokesync.changes import BatchLog, ConfirmedWrite, DeadLetter, PushSink


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds + 0.5))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class Progress:
    """One stage. ``advance(n, batches=…)`` as work completes; ``close()`` (or ``with``) ends it."""

    def __init__(
        self,
        stage: str,
        total: int | None = None,
        *,
        unit: str = "records",
        stream: TextIO | None = None,
        enabled: bool = True,
        total_batches: int | None = None,
        batch_unit: str = "batches",
        interactive: bool | None = None,
        min_interval_s: float = 0.2,
        clock=time.monotonic,
        quiet_if_empty: bool = False,
    ) -> None:
        self.stage = stage
        self.total = total
        self.total_batches = total_batches
        self.batch_unit = batch_unit
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.interactive = bool(isatty and isatty()) if interactive is None else interactive
        self.min_interval_s = min_interval_s
        self._clock = clock
        self.started = clock()
        self.done = 0
        self.batches = 0
        self._drawn = 0.0
        self._width = 0
        self.closed = not enabled  # a disabled progress counts nothing and prints nothing
        self.quiet_if_empty = quiet_if_empty  # a stage that did nothing prints no line

    def expect(self, n: int) -> None:
        """Add ``n`` to the total (work found once the stage has started)."""
        self.total = (self.total or 0) + n

    def advance(self, n: int = 0, *, batches: int = 0) -> None:
        if self.closed:
            return
        self.done += n
        self.batches += batches
        if self.interactive:
            now = self._clock()
            if now - self._drawn >= self.min_interval_s:
                self._drawn = now
                self._draw(self.status_line(now))

    def status_line(self, now: float | None = None) -> str:
        """The live line: ``stage  done/total unit  pct  rate  batches  ETA``."""
        elapsed = (self._clock() if now is None else now) - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        parts = [self.stage]
        if self.total:
            pct = 100 * self.done / self.total
            parts.append(f"{self.done:,}/{self.total:,} {self.unit} {pct:3.0f}%")
        else:
            parts.append(f"{self.done:,} {self.unit}")
        parts.append(f"{rate:,.0f} {self.unit}/s")
        if self.total_batches:
            parts.append(f"{self.batch_unit} {self.batches:,}/{self.total_batches:,}")
        elif self.batches:
            parts.append(f"{self.batches:,} {self.batch_unit}")
        left = None
        if self.total and rate > 0 and self.done < self.total:
            left = (self.total - self.done) / rate
        elif self.total_batches and self.batches and self.batches < self.total_batches:
            left = (self.total_batches - self.batches) * elapsed / self.batches
        if left is not None:
            parts.append(f"{_clock(left)} left")
        return "  ".join(parts)

    def summary_line(self, note: str = "") -> str:
        elapsed = self._clock() - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        text = f"{self.stage}: {self.done:,} {self.unit} in {elapsed:.1f} s ({rate:,.0f} {self.unit}/s)"
        if self.batches:
            text += f", {self.batches:,} {self.batch_unit}"
        return text + (f", {note}" if note else "")

    def clear(self) -> None:
        """Blank the live line (before printing something else to the same terminal)."""
        if self.interactive and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0

    def _draw(self, line: str) -> None:
        pad = max(0, self._width - len(line))
        self.stream.write("\r" + line + " " * pad)
        self.stream.flush()
        self._width = len(line)

    def close(self, note: str = "") -> None:
        if self.closed:
            return
        self.closed = True
        if self.quiet_if_empty and not self.done and not self.batches and not note:
            self.clear()
            return
        line = self.summary_line(note)
        if self.interactive:
            self._draw(line)
            self.stream.write("\n")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close("stopped" if exc_type is not None else "")


class ProgressSink:
    """A push sink that forwards everything to ``sink`` and advances ``progress``: records as
    HubSpot confirms or rejects them, batches as calls complete."""

    def __init__(self, sink: PushSink, progress: Progress) -> None:
        self._sink = sink
        self._progress = progress

    def record_confirmed(self, writes: list[ConfirmedWrite], run_id: str) -> None:
        self._sink.record_confirmed(writes, run_id)
        self._progress.advance(len(writes))

    def record_dead_letters(self, letters: list[DeadLetter], run_id: str) -> None:
        self._sink.record_dead_letters(letters, run_id)
        self._progress.advance(len(letters))

    def record_batch(self, entry: BatchLog) -> None:
        self._sink.record_batch(entry)
        self._progress.advance(0, batches=1)
