"""Progress lines: live on a terminal, one line per stage elsewhere."""

from __future__ import annotations

import io

from spokesync.progress import Progress


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_terminal_shows_rate_batches_and_time_left_then_the_summary() -> None:
    out, clock = io.StringIO(), FakeClock()
    p = Progress("push contacts", 1000, stream=out, interactive=True, clock=clock)
    clock.now += 2
    p.advance(200, batches=2)
    assert out.getvalue() == (
        "\rpush contacts  200/1,000 records  20%  100 records/s  2 batches  0:08 left"
    )
    clock.now += 0.1  # within 0.2 s of the last draw: not redrawn
    p.advance(100, batches=1)
    assert out.getvalue().count("\r") == 1
    clock.now += 6.9
    p.advance(700, batches=7)
    p.close()
    lines = out.getvalue().split("\r")
    # padded with blanks over the longer live line, then a newline
    assert lines[-1].endswith("\n")
    assert lines[-1].rstrip() == "push contacts: 1,000 records in 9.0 s (111 records/s), 10 batches"


def test_elsewhere_only_one_line_per_stage() -> None:
    out, clock = io.StringIO(), FakeClock()
    with Progress("ingest", unit="rows", total_batches=3, stream=out, clock=clock) as p:
        for _ in range(3):
            clock.now += 1
            p.advance(5000, batches=1)
        assert out.getvalue() == ""
    assert out.getvalue() == "ingest: 15,000 rows in 3.0 s (5,000 rows/s), 3 batches\n"


def test_batches_give_time_left_when_the_total_is_unknown() -> None:
    clock = FakeClock()
    p = Progress(
        "ingest",
        unit="rows",
        total_batches=4,
        batch_unit="partitions",
        stream=io.StringIO(),
        clock=clock,
    )
    clock.now += 10
    p.advance(123, batches=1)
    assert p.status_line() == "ingest  123 rows  12 rows/s  partitions 1/4  0:30 left"


def test_a_failed_stage_says_so() -> None:
    out = io.StringIO()
    try:
        with Progress("push deals", 10, stream=out, clock=FakeClock()) as p:
            p.advance(3)
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert out.getvalue().endswith(", stopped\n")


def test_disabled_progress_prints_nothing() -> None:
    out = io.StringIO()
    with Progress("push", 10, stream=out, enabled=False) as p:
        p.advance(10, batches=1)
    assert (out.getvalue(), p.done) == ("", 0)
