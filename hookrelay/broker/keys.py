"""Every Redis key, pub/sub channel and client name hookrelay uses, named in this one place.

Ours all start with the namespace (HOOKRELAY_QUEUE_NAME), so that several deployments, or
test runs, can share one Redis:

    <ns>                    sorted set: the first-attempt lane's queue tasks, scored by due time
                            in ms (an arq queue)
    <ns>:retries            sorted set: the retry lane's queue tasks (an arq queue)
    <ns>:health-check       string, and <ns>:retries:health-check: written by arq's worker
    <ns>:due, <ns>:retries:due
                            channels: a lane's tasks come due at a time (unix ms), published
                            with each enqueue so that its workers look at once
    <ns>:log                channel: ids of apps whose event log grew
    <ns>:revoked            channel: ids of apps one of whose keys was revoked
    <ns>:metrics            hash: the workers' delivery metrics, one field per Prometheus sample
    <ns>:rate:<endpoint id> string: the endpoint's next start slot (ms, Redis's clock)

arq keeps each queue task under keys of its own, shared by every namespace (arq:job:<task id>,
arq:result:<task id>, arq:in-progress:<task id>, arq:retry:...); the batched enqueue writes the
first and reads the first two, and a lane reads the third, so they are taken from arq here and
checked by a test.
"""

from __future__ import annotations

from dataclasses import dataclass

from arq.constants import in_progress_key_prefix, job_key_prefix, result_key_prefix

# arq's prefixes of a queue task's payload key, of its result key, and of the key that says a
# worker runs it.
TASK_KEY_PREFIX: str = job_key_prefix
TASK_RESULT_KEY_PREFIX: str = result_key_prefix
TASK_RUNNING_KEY_PREFIX: str = in_progress_key_prefix
LISTENER_NAME_PREFIX = "hookrelay-listener:"
DUE_CHANNEL_SUFFIX = ":due"


@dataclass(frozen=True)
class Keys:
    """The names of one deployment's keys and channels."""

    namespace: str

    @property
    def first_attempt_lane(self) -> str:
        return self.namespace

    @property
    def retry_lane(self) -> str:
        return f"{self.namespace}:retries"

    @property
    def log_channel(self) -> str:
        return f"{self.namespace}:log"

    @property
    def revocation_channel(self) -> str:
        return f"{self.namespace}:revoked"

    @property
    def metrics(self) -> str:
        return f"{self.namespace}:metrics"

    def rate(self, endpoint_id: str) -> str:
        """The key holding an endpoint's next start slot."""
        return f"{self.namespace}:rate:{endpoint_id}"


def due_channel(lane: str) -> str:
    """The channel on which a lane's workers are told that its tasks come due."""
    return f"{lane}{DUE_CHANNEL_SUFFIX}"


def listener_name(channel: str) -> str:
    """The client name of a connection that listens on `channel` (shown by CLIENT LIST)."""
    return LISTENER_NAME_PREFIX + channel
