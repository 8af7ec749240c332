"""The HubSpot client and the push: rate-limited, retried, idempotent batch writes.

Engine code only (no Dagster). Entry points:

- :class:`spokesync.hubspot.client.HubSpotClient` — the async httpx client;
- :func:`spokesync.hubspot.push.push_changes` / :func:`~spokesync.hubspot.push.push_changes_blocking`;
- :func:`spokesync.hubspot.properties.ensure_properties`;
- :func:`spokesync.hubspot.read.read_all` — full-refresh paging.
"""
