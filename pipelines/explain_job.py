"""``explain_record_job``: `spokesync explain` as a job an analyst launches from the Dagster UI.

Config: the object type, the record's external id and, optionally, the partition (default: the
newest in the warehouse). The answer is logged and attached as Markdown metadata; nothing is
written to HubSpot or the state store.
"""

import datetime as dt

import dagster as dg

from resources.hubspot import HubSpotResource
from spokesync.explain import explain
from spokesync.mapping.loader import load_mappings
from spokesync.sync.runner import default_mapping_paths, latest_partition


class ExplainConfig(dg.Config):
    object_type: str
    external_id: str
    as_of: str | None = None  # YYYY-MM-DD


@dg.op(description="Why a record holds its values and what a sync would send now.")
def explain_record(
    context: dg.OpExecutionContext, config: ExplainConfig, hubspot: HubSpotResource
) -> None:
    settings = hubspot.settings()
    mappings = {m.object_type: m for m in load_mappings(default_mapping_paths())}
    mapping = mappings.get(config.object_type)
    if mapping is None:
        raise dg.Failure(
            description=f"no mapping for {config.object_type!r}; mapped objects: "
            + ", ".join(sorted(mappings))
        )
    as_of = (
        dt.date.fromisoformat(config.as_of)
        if config.as_of
        else latest_partition(settings.warehouse_dir)
    )
    key = config.external_id.strip()
    if mapping.id_form == "email":
        key = key.lower()
    result = explain(settings, mapping, key, as_of)
    text = result.to_text()
    context.log.info(text)
    context.add_output_metadata(
        {
            "explanation": dg.MetadataValue.md("```\n" + text + "\n```"),
            "properties_to_send": sum(p.decision.startswith("send") for p in result.properties),
        }
    )


@dg.job(
    description="Explain one record: HubSpot's value, desired value, rule, last write and "
    "why each property is or is not sent now."
)
def explain_record_job() -> None:
    explain_record()


JOBS = [explain_record_job]
