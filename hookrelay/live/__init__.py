"""Clients that cannot take webhooks: the event log read live (long-poll and SSE)."""
