"""hookrelay: the event-callback gateway for AI jobs."""

__version__ = "0.1.0"
