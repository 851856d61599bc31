"""hookrelay's data in Postgres, by aggregate: the only package that imports asyncpg.

`Storage` opens the pools (see `db.Database`: up to `max_size` connections for most
statements, and up to five more that plan each filtered read for its arguments) and holds one
object per aggregate (apps and their keys, endpoints, events and the log, deliveries and
attempts, maintenance, the log's partitions); each runs the named queries of its own file in
`sql/queries/` and answers with the records of `hookrelay.models`.
"""

from __future__ import annotations

from hookrelay.storage.apps import Apps
from hookrelay.storage.db import Database
from hookrelay.storage.deliveries import Deliveries
from hookrelay.storage.endpoints import Endpoints
from hookrelay.storage.events import Events
from hookrelay.storage.maintenance import Maintenance
from hookrelay.storage.partitions import Partitions


class Storage:
    """hookrelay's data, as domain records; driver errors come out as hookrelay errors."""

    def __init__(self, db: Database, partition_interval_s: float | None = None) -> None:
        self.db = db
        self.apps = Apps(db)
        self.endpoints = Endpoints(db)
        self.events = Events(db)
        self.deliveries = Deliveries(db, partition_interval_s)
        self.maintenance = Maintenance(db)
        self.partitions = Partitions(db)

    @classmethod
    async def open(
        cls,
        database_url: str,
        max_size: int = 20,
        retention_s: float | None = None,
        partition_interval_s: float | None = None,
        plan_each_call: bool = False,
    ) -> Storage:
        """Storage over pools that connect on first use (a process starts while Postgres is
        down, and reconnects by itself when it is back); with `retention_s`, reads of the log
        leave out what is older; with `partition_interval_s`, listings of deliveries look
        first in the partition's time just before their cursor; with `plan_each_call`, every
        statement is planned for its call (the worker's, see Database)."""
        db = await Database.open(database_url, max_size, retention_s, plan_each_call)
        return cls(db, partition_interval_s)

    async def close(self) -> None:
        await self.db.close()

    async def ping(self) -> None:
        """Check that the database answers."""
        await self.maintenance.ping()
