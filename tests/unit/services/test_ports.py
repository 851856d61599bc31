"""The services' Protocols match what production passes them and what the fakes are: a
rename on one side fails here, not in a server test."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.resolver import DefaultResolver

from hookrelay.broker import CommitNotifier, DeliveryQueue, EnqueueCoalescer
from hookrelay.services import ports
from hookrelay.storage.apps import Apps
from hookrelay.storage.deliveries import Deliveries
from hookrelay.storage.endpoints import Endpoints
from hookrelay.storage.events import Events
from tests import fakes

# Each Protocol, with the production class and the fake that stand for it.
IMPLEMENTATIONS: list[tuple[type, type, type]] = [
    (ports.KeyStore, Apps, fakes.FakeApps),
    (ports.AppStore, Apps, fakes.FakeApps),
    (ports.EndpointStore, Endpoints, fakes.FakeEndpoints),
    (ports.EndpointReader, Endpoints, fakes.FakeEndpoints),
    (ports.EventStore, Events, fakes.FakeEvents),
    (ports.ReplayStore, Deliveries, fakes.FakeDeliveries),
    (ports.LogStore, Events, fakes.FakeEvents),
    (ports.Queue, DeliveryQueue, fakes.RecordingQueue),
    (ports.NewDeliveryQueue, EnqueueCoalescer, fakes.RecordingNewDeliveries),
    (ports.CommitNotices, CommitNotifier, fakes.RecordingNotices),
    (ports.Resolver, DefaultResolver, fakes.ScriptedResolver),
]
CASES = [
    pytest.param(protocol, name, implementation, id=f"{protocol.__name__}.{name}:{side}")
    for protocol, real, fake in IMPLEMENTATIONS
    for name, member in vars(protocol).items()
    if inspect.isfunction(member) and not name.startswith("_")
    for side, implementation in (("real", real), ("fake", fake))
]


def parameters(function: Callable[..., Any]) -> list[str]:
    return [name for name in inspect.signature(function).parameters if name != "self"]


@pytest.mark.parametrize(("protocol", "name", "implementation"), CASES)
def test_each_protocol_method_is_implemented_with_its_parameters(
    protocol: type, name: str, implementation: type
) -> None:
    declared = getattr(protocol, name)
    method = getattr(implementation, name, None)
    assert method is not None, f"{implementation.__name__} has no {name}"
    assert inspect.iscoroutinefunction(method) == inspect.iscoroutinefunction(declared)
    # Extra parameters (with defaults) are fine; the declared ones come first, by name.
    assert parameters(method)[: len(parameters(declared))] == parameters(declared)


STORAGE_FAKES = [
    (Apps, fakes.FakeApps),
    (Endpoints, fakes.FakeEndpoints),
    (Events, fakes.FakeEvents),
    (Deliveries, fakes.FakeDeliveries),
]


@pytest.mark.parametrize(("real", "fake"), STORAGE_FAKES, ids=lambda c: c.__name__)
def test_a_storage_fake_offers_nothing_its_aggregate_lacks(real: type, fake: type) -> None:
    """A fake that grew a method production lacks would let a service test pass on it."""
    offered = {name for name in vars(fake) if not name.startswith("_")}
    assert offered <= set(dir(real))
