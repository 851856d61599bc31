"""Every service built on the in-memory fakes: no servers, no network, no clock waits."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from hookrelay.services.apps import Apps
from hookrelay.services.auth import Auth
from hookrelay.services.endpoints import Endpoints
from hookrelay.services.enqueue import Enqueuer
from hookrelay.services.ingest import Ingest
from hookrelay.services.replay import Replays
from hookrelay.settings import Settings
from tests.fakes import (
    FakeStore,
    RecordingNewDeliveries,
    RecordingNotices,
    RecordingQueue,
    ScriptedResolver,
)

ADMIN_TOKEN = "admin-token-for-unit-tests"
PUBLIC_ADDRESS = "93.184.216.34"
# Public names that tests register endpoints at; anything else does not resolve.
PUBLIC_HOST = "hooks.example"


@dataclass
class Rig:
    """The services and the fakes they are built on."""

    settings: Settings
    store: FakeStore
    queue: RecordingQueue
    new_deliveries: RecordingNewDeliveries
    enqueuer: Enqueuer
    notices: RecordingNotices
    resolver: ScriptedResolver
    auth: Auth
    apps: Apps
    endpoints: Endpoints
    ingest: Ingest
    replays: Replays


def build_rig(settings: Settings, replay_batch: int = 3) -> Rig:
    store, queue, new_deliveries = FakeStore(), RecordingQueue(), RecordingNewDeliveries()
    notices = RecordingNotices()
    resolver = ScriptedResolver({PUBLIC_HOST: [PUBLIC_ADDRESS]})
    enqueuer = Enqueuer(queue, new_deliveries)
    auth = Auth(settings, store.as_apps, notices.announce_revocation)
    return Rig(
        settings=settings,
        store=store,
        queue=queue,
        new_deliveries=new_deliveries,
        enqueuer=enqueuer,
        notices=notices,
        resolver=resolver,
        auth=auth,
        apps=Apps(store.as_apps, auth.revoked),
        endpoints=Endpoints(
            settings, store.as_endpoints, settings.secret_box(), resolver, enqueuer
        ),
        ingest=Ingest(store.as_events, enqueuer, notices),
        replays=Replays(store.as_deliveries, store.as_endpoints, enqueuer, batch_size=replay_batch),
    )


@pytest.fixture
def settings() -> Settings:
    return Settings(admin_token=ADMIN_TOKEN, secret_key=bytes(range(32)))


@pytest.fixture
def rig(settings: Settings) -> Rig:
    return build_rig(settings)
