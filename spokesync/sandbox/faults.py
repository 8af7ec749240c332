"""Fault injection: HubSpot's transient failures on demand, deterministic under a seed.

A fault is decided before the handler runs, so a faulted write is not applied, except for the
``drop_after_apply`` knob, which applies the write and then drops the connection ("committed
but the response was lost")."""

from __future__ import annotations

import random
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

FAULT_STATUSES = (423, 429, 500, 502, 503, 504, 521, 523, 524)
# "daily": a 429 with policyName DAILY (the portal's daily limit), scripted only (``next``).
ScriptedFault = int | Literal["drop", "drop_after_apply", "empty", "latency", "daily"]


class FaultConfig(BaseModel):
    """The fault knobs (``PUT /__sandbox/faults`` replaces them all; ``PATCH`` merges)."""

    model_config = ConfigDict(extra="forbid")

    seed: int | None = None
    status_probability: dict[int, float] = Field(default_factory=dict)
    latency_spike_probability: float = Field(0.0, ge=0, le=1)
    latency_spike_ms: int = Field(1500, ge=0)
    drop_probability: float = Field(0.0, ge=0, le=1)
    drop_after_apply_probability: float = Field(0.0, ge=0, le=1)
    empty_2xx_probability: float = Field(0.0, ge=0, le=1)
    route_pattern: str | None = None
    writes_only: bool = False
    next: list[ScriptedFault] = Field(default_factory=list)
    # Per route: regex → faults for the next eligible requests whose path it matches (first
    # matching regex with faults left wins), so one run can meet each fault on each route.
    scripts: dict[str, list[ScriptedFault]] = Field(default_factory=dict)

    @field_validator("status_probability")
    @classmethod
    def _known_statuses(cls, value: dict[int, float]) -> dict[int, float]:
        for status, p in value.items():
            if status not in FAULT_STATUSES:
                raise ValueError(f"status {status} is not injectable; choose from {FAULT_STATUSES}")
            if not 0 <= p <= 1:
                raise ValueError(f"probability for {status} must be within [0, 1], not {p}")
        if sum(value.values()) > 1:
            raise ValueError("status probabilities must add up to at most 1")
        return value

    @field_validator("route_pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            re.compile(value)
        return value

    @field_validator("next")
    @classmethod
    def _scripted_statuses(cls, value: list[ScriptedFault]) -> list[ScriptedFault]:
        for item in value:
            if isinstance(item, int) and item not in FAULT_STATUSES:
                raise ValueError(f"status {item} is not injectable; choose from {FAULT_STATUSES}")
        return value

    @field_validator("scripts")
    @classmethod
    def _scripts(cls, value: dict[str, list[ScriptedFault]]) -> dict[str, list[ScriptedFault]]:
        for pattern, faults in value.items():
            re.compile(pattern)
            cls._scripted_statuses(faults)
        return value


class FaultPlan:
    """Draws faults for eligible requests from one seeded random stream."""

    def __init__(self, config: FaultConfig | None = None) -> None:
        self.configure(config or FaultConfig())

    def configure(self, config: FaultConfig) -> None:
        self.config = config
        self._pattern = re.compile(config.route_pattern) if config.route_pattern else None
        self._rng = random.Random(config.seed)
        self._queue: list[ScriptedFault] = list(config.next)
        self._scripts = [(re.compile(p), list(q)) for p, q in config.scripts.items()]

    def eligible(self, path: str, is_write: bool) -> bool:
        if self.config.writes_only and not is_write:
            return False
        return not (self._pattern and not self._pattern.search(path))

    def draw(self, path: str, is_write: bool) -> ScriptedFault | None:
        """The fault for this request, if any: a status, drop, drop_after_apply, empty, latency
        or (scripted only) daily."""
        if not self.eligible(path, is_write):
            return None
        if self._queue:
            return self._queue.pop(0)
        for pattern, queue in self._scripts:
            if queue and pattern.search(path):
                return queue.pop(0)
        c = self.config
        roll = self._rng.random()
        for status, p in sorted(c.status_probability.items()):
            if roll < p:
                return status
            roll -= p
        for kind, p in (
            ("drop", c.drop_probability),
            ("drop_after_apply", c.drop_after_apply_probability),
            ("empty", c.empty_2xx_probability),
            ("latency", c.latency_spike_probability),
        ):
            if roll < p:
                return kind  # type: ignore[return-value]
            roll -= p
        return None

    def to_json(self) -> dict[str, object]:
        data = self.config.model_dump()
        data["next"] = list(self._queue)
        data["scripts"] = {p.pattern: list(q) for p, q in self._scripts}
        return data
