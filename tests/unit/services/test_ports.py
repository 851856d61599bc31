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


def test_every_storage_method_the_services_call_is_a_method_of_its_aggregate() -> None:
    for protocol, real, _ in IMPLEMENTATIONS:
        declared = {name for name, member in vars(protocol).items() if inspect.isfunction(member)}
        assert declared <= set(dir(real)), protocol.__name__
