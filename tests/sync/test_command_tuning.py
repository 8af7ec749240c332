"""`spokesync sync` tunes its own process for the push: uvloop and the cycle collector."""

from __future__ import annotations

import asyncio
import gc

from spokesync.sync.command import _fast_event_loop, _tune_gc


def test_the_sync_command_runs_its_event_loop_on_uvloop() -> None:
    before = asyncio.get_event_loop_policy()
    try:
        _fast_event_loop()

        async def loop_module() -> str:
            return type(asyncio.get_running_loop()).__module__

        assert asyncio.run(loop_module()).startswith("uvloop")
    finally:
        asyncio.set_event_loop_policy(before)


def test_the_sync_command_collects_the_young_generation_less_often() -> None:
    before = gc.get_threshold()
    try:
        _tune_gc()
        assert gc.get_threshold() == (50_000, 20, 10)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
