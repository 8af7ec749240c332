"""``spokesync explain <object> <external id>``: why a record holds its values.

Per managed property: HubSpot's value (the snapshot), the desired value for the partition, the
owner rule, the last confirmed write (when, run, partition, HubSpot correlation id, and the
canonical event and source rows behind it), and why the property is or is not being sent now:
``send`` or one of ``equal``, ``within tolerance``, ``hubspot-owned and filled``, ``as-of
guard``, ``parked dead letter`` (a permanent rejection of exactly the planned values; a
transient one shows as ``send … (retrying (attempt N) …)``), ``gate failed``, ``not in
rollout``, ``forward only``, ``withheld``, ``no desired value``. The answer comes from the engine's own diff, so it is what a sync would do.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spokesync.desired import GATE_PREFIX, ID_COLUMN
from spokesync.diff import TOLERATED_TABLE, plan_changes
from spokesync.mapping.loader import load_mappings
from spokesync.mapping.spec import MappingSpec, quote_identifier
from spokesync.rollout import Rollout
from spokesync.settings import Settings
from spokesync.state.dead_letters import is_permanent
from spokesync.state.store import StateStore


@dataclass
class LastWrite:
    recorded_at: dt.datetime
    run_id: str | None
    as_of: dt.date | None
    correlation_id: str | None
    old_value: str | None
    new_value: str | None
    event_id: str | None
    event: dict[str, Any] | None = None


@dataclass
class PropertyExplanation:
    property: str
    hubspot_value: str | None
    hubspot_as_of: dt.date | None
    desired_value: str | None
    rule: str
    decision: str  # "send" or the reason it is not sent
    last_write: LastWrite | None = None


@dataclass
class Explanation:
    object_type: str
    external_id: str
    as_of: dt.date
    hubspot_id: str | None
    in_desired: bool
    gate_failures: dict[str, str] = field(default_factory=dict)
    dead_letters: list[str] = field(default_factory=list)
    properties: list[PropertyExplanation] = field(default_factory=list)

    def to_text(self) -> str:
        head = (
            f"{self.object_type} {self.external_id} (HubSpot id {self.hubspot_id or '—'}), "
            f"as of {self.as_of}"
        )
        lines = [head]
        if not self.in_desired:
            lines.append("  not in desired state for this day (or not in the rollout)")
        for gate, reason in self.gate_failures.items():
            lines.append(f"  gate {gate} failed: {reason} (its fields are never written)")
        for letter in self.dead_letters:
            lines.append(f"  dead letter: {letter}")
        for p in self.properties:
            lines.append(f"  {p.property}")
            lines.append(f"    HubSpot:  {_show(p.hubspot_value)}")
            lines.append(f"    desired:  {_show(p.desired_value)}")
            lines.append(f"    rule:     {p.rule}")
            w = p.last_write
            if w is None:
                lines.append("    last write: none by spokesync")
            else:
                lines.append(
                    f"    last write: {w.recorded_at:%Y-%m-%d %H:%M:%S} UTC, run {w.run_id}, "
                    f"partition {w.as_of}, correlation id {w.correlation_id or '—'}, "
                    f"{_show(w.old_value)} → {_show(w.new_value)}"
                )
                if w.event is not None:
                    rows = ", ".join(
                        f"{r.get('table')}:{r.get('key')}" for r in w.event.get("source_rows", [])
                    )
                    lines.append(
                        f"    event:    {w.event['type']} v{w.event['version']} {w.event_id}"
                        f" (source rows: {rows or '—'})"
                    )
                elif w.event_id:
                    lines.append(f"    event:    {w.event_id}")
            lines.append(f"    now:      {p.decision}")
        return "\n".join(lines)


def _show(value: str | None) -> str:
    if value is None:
        return "∅"
    return value if len(value) <= 70 else value[:69] + "…"


def _rule(mapping: MappingSpec, prop: str) -> str:
    if prop == mapping.id.property:
        return "external id (upsert key)"
    f = mapping.field(prop)
    parts = [f"{f.owner}-owned", f"null {f.null_policy}"]
    if f.forward_only:
        parts.append("forward only")
    if f.send_with:
        parts.append("sent with " + ", ".join(f.send_with))
    if f.gate:
        parts.append(f"gate {f.gate}")
    if f.threshold:
        parts.append(f.threshold)
    return "; ".join(parts)


def explain(
    settings: Settings,
    mapping: MappingSpec,
    external_id: str,
    as_of: dt.date,
    rollout: Rollout | None = None,
) -> Explanation:
    """Explain one record of ``mapping`` for ``as_of`` (read only: nothing is written)."""
    with plan_changes(settings.state_db, settings.warehouse_dir, mapping, as_of, rollout) as plan:
        con = plan.con
        gates = [GATE_PREFIX + g for g in mapping.gates]
        props = mapping.managed_properties
        sel = [ID_COLUMN] + [quote_identifier(p) for p in props[1:]]
        sel += [quote_identifier(g) for g in gates]
        row = con.execute(
            f"SELECT {', '.join(sel)} FROM desired WHERE {ID_COLUMN} = $id", {"id": external_id}
        ).fetchall()
        desired: dict[str, str | None] = {}
        gate_failures: dict[str, str] = {}
        if row:
            values = list(row[0])
            desired = dict(zip(props, values[: len(props)], strict=True))
            for g, reason in zip(mapping.gates, values[len(props) :], strict=True):
                if reason is not None:
                    gate_failures[g] = reason
        planned = {
            p: v
            for p, v in con.execute(
                f"SELECT property, new_value FROM plan WHERE {ID_COLUMN} = $id", {"id": external_id}
            ).fetchall()
        }
        tolerated = {  # differs, but within the field's threshold: not sent
            r[0]
            for r in con.execute(
                f"SELECT property FROM {TOLERATED_TABLE} WHERE {ID_COLUMN} = $id",
                {"id": external_id},
            ).fetchall()
        }
    store = StateStore(settings.state_db, [mapping])
    with store.connection.connection() as scon:
        snap = {
            p: (v, a, h)
            for p, v, a, h in scon.execute(
                "SELECT property, value, as_of, hubspot_id FROM snapshot "
                "WHERE object_type = $ot AND external_id = $id",
                {"ot": mapping.object_type, "id": external_id},
            ).fetchall()
        }
        verified = scon.execute(
            "SELECT max(verified_as_of) FROM record_verified "
            "WHERE object_type = $ot AND external_id = $id",
            {"ot": mapping.object_type, "id": external_id},
        ).fetchall()[0][0]
        letters = [
            Letter(*r)
            for r in scon.execute(
                "SELECT category, message, attempts, state, payload FROM dead_letter "
                "WHERE object_type = $ot AND external_id = $id AND state IN ('open', 'replayed') "
                "ORDER BY last_seen",
                {"ot": mapping.object_type, "id": external_id},
            ).fetchall()
        ]
        history = scon.execute(
            "SELECT property, recorded_at, run_id, as_of, correlation_id, old_value, new_value, "
            "event_id FROM value_history WHERE object_type = $ot AND external_id = $id "
            "QUALIFY row_number() OVER (PARTITION BY property ORDER BY recorded_at DESC) = 1",
            {"ot": mapping.object_type, "id": external_id},
        ).fetchall()
        events = _events(scon, [h[7] for h in history if h[7]])
    last = {h[0]: LastWrite(*h[1:], event=events.get(h[7])) for h in history}
    hubspot_id = next((s[2] for s in snap.values() if s[2]), None)
    out = Explanation(
        mapping.object_type,
        external_id,
        as_of,
        hubspot_id,
        in_desired=bool(desired),
        gate_failures=gate_failures,
        dead_letters=[letter.describe() for letter in letters],
    )
    letter_note = _letter_decision(letters, planned)
    for prop in props:
        held, held_as_of, _ = snap.get(prop, (None, None, None))
        want = desired.get(prop)
        decision = _decision(
            mapping, prop, planned, desired, held, held_as_of, as_of, verified, gate_failures
        )
        if prop in tolerated:
            threshold = mapping.field(prop).threshold
            decision = f"within tolerance ({threshold} of HubSpot's value: not worth a write)"
        if letter_note and decision.startswith("send"):
            parked = letter_note.startswith("parked")
            decision = letter_note if parked else f"{decision} ({letter_note})"
        out.properties.append(
            PropertyExplanation(
                prop, held, held_as_of, want, _rule(mapping, prop), decision, last.get(prop)
            )
        )
    return out


@dataclass(frozen=True)
class Letter:
    """An open (or replayed) dead letter of the record, as :func:`explain` reads it."""

    category: str | None
    message: str | None
    attempts: int
    state: str
    payload: Any

    @property
    def parked(self) -> bool:
        """A permanent rejection still open: the sync holds the record back (see
        :mod:`spokesync.state.dead_letters`)."""
        return self.state == "open" and is_permanent(self.category)

    @property
    def properties(self) -> dict[str, str]:
        raw = json.loads(self.payload) if isinstance(self.payload, str) else self.payload or {}
        props = raw.get("properties") or {}
        return {str(k): "" if v is None else str(v) for k, v in props.items()}

    def describe(self) -> str:
        what = f"{self.category}: {self.message}"
        if self.state == "replayed":
            return f"replayed by a person (re-planned and sent by the next sync): {what}"
        if self.parked:
            return f"parked (HubSpot rejected it for a permanent reason): {what}"
        return f"retrying (attempt {self.attempts + 1}; {self.attempts} failed so far): {what}"


def _letter_decision(letters: list[Letter], planned: dict[str, str]) -> str:
    """What the record's dead letter does to a planned send ('' when it has none): parked only
    while the planned change is exactly the rejected payload, as the push decides."""
    if not letters:
        return ""
    letter = letters[-1]
    if letter.state == "replayed":
        return "replayed: re-planned from the current desired state and sent"
    if letter.parked:
        if letter.properties == planned:
            return (
                f"parked dead letter ({letter.category}: HubSpot rejected exactly these values; "
                "not sent until the desired values change or `spokesync state replay`)"
            )
        return "the desired values changed since HubSpot rejected the record: sent again"
    return f"retrying (attempt {letter.attempts + 1}) after {letter.category}"


def _events(con: Any, event_ids: list[str]) -> dict[str, dict[str, Any]]:
    if not event_ids:
        return {}
    exists = con.execute(
        "SELECT 1 FROM information_schema.tables WHERE table_name = 'canonical_events'"
    ).fetchall()
    if not exists:
        return {}
    rows = con.execute(
        "SELECT event_id, payload FROM canonical_events WHERE list_contains($ids, event_id)",
        {"ids": sorted(set(event_ids))},
    ).fetchall()
    return {e: json.loads(p) if isinstance(p, str) else p for e, p in rows}


def _decision(
    mapping: MappingSpec,
    prop: str,
    planned: dict[str, str],
    desired: dict[str, str | None],
    held: str | None,
    held_as_of: dt.date | None,
    as_of: dt.date,
    verified: dt.date | None,
    gate_failures: dict[str, str],
) -> str:
    if prop in planned:
        new = planned[prop]
        return "send: clear" if new == "" else f"send: {_show(new)}"
    if not desired:
        return "not in rollout / not in desired state"
    f = None if prop == mapping.id.property else mapping.field(prop)
    want = desired.get(prop)
    if f is not None and f.gate and f.gate in gate_failures:
        return f"gate failed ({f.gate}: {gate_failures[f.gate]})"
    if (held_as_of is not None and held_as_of > as_of) or (
        verified is not None and verified > as_of
    ):
        return "as-of guard (HubSpot holds a value from a newer partition)"
    if want is None:
        if f is not None and f.null_policy == "clear" and held is not None:
            return "not sent (clear pending elsewhere)"
        return "no desired value (skip)"
    if held == want:
        return "equal"
    if f is not None and f.owner == "hubspot" and held is not None:
        return "hubspot-owned and filled (people's value stands)"
    if f is not None and f.forward_only:
        return "forward only (would move HubSpot's stage backwards)"
    if f is not None and f.send_with:
        missing = [c for c in f.send_with if desired.get(c) is None]
        if missing:
            return f"withheld ({', '.join(missing)} has no desired value)"
    return "not sent"


# -- the command ------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("object_type", help="the mapping's object type (companies, deals, …)")
    parser.add_argument("external_id", help="the record's external id (contacts: email)")
    parser.add_argument("--as-of", type=dt.date.fromisoformat, help="partition (default: newest)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def run(args: argparse.Namespace) -> int:
    from spokesync.sync.runner import default_mapping_paths, latest_partition

    settings = Settings.from_env()
    mappings = {m.object_type: m for m in load_mappings(default_mapping_paths())}
    mapping = mappings.get(args.object_type)
    if mapping is None:
        print(
            f"spokesync explain: no mapping for {args.object_type!r}; mapped objects: "
            f"{', '.join(sorted(mappings))}"
        )
        return 2
    as_of = args.as_of or latest_partition(settings.warehouse_dir)
    result = explain(settings, mapping, _key(mapping, args.external_id), as_of)
    if args.json:
        print(json.dumps(_jsonable(result), indent=1, default=str))
    else:
        print(result.to_text())
    return 0


def _key(mapping: MappingSpec, external_id: str) -> str:
    return external_id.strip().lower() if mapping.id_form == "email" else external_id.strip()


def _jsonable(result: Explanation) -> dict[str, Any]:
    import dataclasses

    return dataclasses.asdict(result)


def explain_path(path: Path) -> MappingSpec:  # pragma: no cover - convenience for notebooks
    (mapping,) = load_mappings([path])
    return mapping
