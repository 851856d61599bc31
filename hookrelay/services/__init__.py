"""The operations behind the HTTP API that do more than one thing, one module each: auth,
apps, endpoints, ingest, replay, the event log; ports.py says what each needs from storage,
the queue and the notices. Simple reads go from the handlers to the storage directly."""
