"""hookrelay's data in Postgres, by aggregate: the only package that imports asyncpg."""
