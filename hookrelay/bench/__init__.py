"""Benchmarks: each starts what it needs (embedded Postgres and Redis, the API, workers, a sink)
and prints its figures."""
