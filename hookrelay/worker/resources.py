"""What one worker process opens once and shares: the store, the broker (Redis), the HTTP
client, the endpoint limits, the metrics, and the deliverer built from them."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp
from aiohttp.abc import AbstractResolver

from hookrelay.broker import Broker, CommitNotifier
from hookrelay.delivery.record import Recorder
from hookrelay.delivery.send import Sender
from hookrelay.metrics import DeliveryMetrics
from hookrelay.models import HealthPolicy
from hookrelay.settings import Settings
from hookrelay.ssrf.outbound import create_session
from hookrelay.storage import Storage
from hookrelay.worker.deliverer import Deliverer
from hookrelay.worker.limits import EndpointLimits


@dataclass
class WorkerResources:
    """What the lanes of one worker process share."""

    settings: Settings
    storage: Storage
    broker: Broker
    session: aiohttp.ClientSession
    notifier: CommitNotifier
    deliverer: Deliverer
    metrics: DeliveryMetrics

    @classmethod
    async def open(
        cls, settings: Settings, resolver: AbstractResolver | None = None
    ) -> WorkerResources:
        """Open the store, the broker and the HTTP client, and build the deliverer on them."""
        running_at_most = settings.worker_concurrency + settings.retry_concurrency
        storage = await Storage.open(
            settings.require_database_url(),
            max_size=min(50, running_at_most),
            retention_s=settings.retention_s,
            plan_each_call=True,
        )
        broker = Broker(settings.require_redis_url(), settings.queue_name)
        session = create_session(
            settings.allowed_cidrs, settings.delivery_timeout_s, running_at_most, resolver
        )
        metrics = DeliveryMetrics()
        # Operational events join the app's log: its live readers hear of them.
        notifier = broker.notices.commit_notifier()
        sender = Sender(
            session,
            settings.secret_box(),
            settings.allowed_cidrs,
            settings.delivery_timeout_s,
            settings.response_body_cap_bytes,
        )
        health = HealthPolicy(settings.disable_after_failing_s, settings.disable_after_dead)
        recorder = Recorder(storage.deliveries, broker.queue, notifier, metrics, health)
        limits = EndpointLimits(broker.rate_slots, settings.endpoint_concurrency)
        deliverer = Deliverer(
            settings, storage.deliveries, broker.queue, sender, recorder, limits, metrics
        )
        return cls(settings, storage, broker, session, notifier, deliverer, metrics)

    async def close(self) -> None:
        """Close what `open` opened, the notices still on their way published first."""
        await self.notifier.close()
        await self.session.close()
        await self.broker.close()
        await self.storage.close()
