"""Inbound HubSpot webhooks: v3 signature check, a durable inbox, and the receiving server."""
