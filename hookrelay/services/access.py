"""What a credential may do: the grants each route needs, and those each app key's scopes and
each portal session's capabilities give.

Routes name grants (hookrelay.api.routes), never scopes or capabilities, so that what a scope
means is said once, here. A credential may only hand on what it holds itself: a key makes keys,
portal sessions and stream tokens of no more than its own grants.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Grant(StrEnum):
    """One thing a caller may do inside its app."""

    SEND_EVENTS = "send_events"  # post events and batches
    READ_EVENTS = "read_events"  # events, jobs, the event stream and long-polls, stream tokens
    READ = "read"  # the app, its endpoints, deliveries and attempts (never a secret)
    READ_KEYS = "read_keys"  # the app's keys as listed (prefixes, names, scopes)
    READ_SECRETS = "read_secrets"  # an endpoint's signing secret
    MANAGE_ENDPOINTS = "manage_endpoints"  # register, change, pause, delete endpoints
    REPLAY = "replay"  # replay deliveries, recover an endpoint
    SEND_TEST = "send_test"  # a test event to one endpoint
    MANAGE_APP = "manage_app"  # the app itself, its keys and its portal sessions


class Scope(StrEnum):
    """What an app key is for. The key made with an app holds all three."""

    PUBLISH = "publish"
    MANAGE = "manage"
    READ = "read"


class Capability(StrEnum):
    """What a portal session may do (as Svix's app portal has them). `view` is always given."""

    VIEW = "view"
    MANAGE_ENDPOINTS = "manage_endpoints"
    VIEW_SECRETS = "view_secrets"
    REPLAY = "replay"
    SEND_TEST = "send_test"


ALL_GRANTS = frozenset(Grant)

SCOPES: dict[str, frozenset[Grant]] = {
    Scope.PUBLISH: frozenset({Grant.SEND_EVENTS, Grant.READ_EVENTS}),
    Scope.MANAGE: ALL_GRANTS - {Grant.SEND_EVENTS},
    Scope.READ: frozenset({Grant.READ_EVENTS, Grant.READ, Grant.READ_KEYS}),
}
ALL_SCOPES = tuple(SCOPES)

CAPABILITIES: dict[str, frozenset[Grant]] = {
    Capability.VIEW: frozenset({Grant.READ_EVENTS, Grant.READ}),
    Capability.MANAGE_ENDPOINTS: frozenset({Grant.MANAGE_ENDPOINTS}),
    Capability.VIEW_SECRETS: frozenset({Grant.READ_SECRETS}),
    Capability.REPLAY: frozenset({Grant.REPLAY}),
    Capability.SEND_TEST: frozenset({Grant.SEND_TEST}),
}


def grants_of_scopes(scopes: Iterable[str]) -> frozenset[Grant]:
    """What a key with these scopes may do (unknown names give nothing)."""
    return frozenset().union(*(SCOPES.get(scope, frozenset()) for scope in scopes))


def grants_of_capabilities(capabilities: Iterable[str]) -> frozenset[Grant]:
    """What a portal session with these capabilities may do (unknown names give nothing)."""
    return frozenset().union(*(CAPABILITIES.get(c, frozenset()) for c in capabilities))


def with_view(capabilities: Iterable[str]) -> list[str]:
    """A session's capabilities as stored and shown: `view` first, then the others in the
    order CAPABILITIES lists them, each once."""
    asked = {Capability.VIEW, *capabilities}
    return [str(name) for name in CAPABILITIES if name in asked]


def in_order(scopes: Iterable[str]) -> list[str]:
    """Scopes as stored and shown: in the order SCOPES lists them, each once."""
    asked = set(scopes)
    return [str(name) for name in SCOPES if name in asked]


def missing(needs: Iterable[Grant], held: frozenset[Grant]) -> list[Grant]:
    """What of `needs` a caller holding `held` lacks, in the order asked."""
    return [grant for grant in needs if grant not in held]


def what_gives(lacking: Iterable[Grant], portal_session: bool) -> str:
    """The lacking grants, in the words the credential was made with: the capabilities that
    would give them to a portal session, the scopes that would give them to a key."""
    names = CAPABILITIES if portal_session else SCOPES
    givers = [str(name) for name, grants in names.items() if grants & set(lacking)]
    kind = "capability" if portal_session else "scope"
    if not givers:  # nothing a session can be given (a key of the app may): say the grants
        return ", ".join(lacking)
    return f"{', '.join(lacking)} (given by the {kind} {' or '.join(givers)})"
