"""Everything hookrelay keeps in Redis, and the only package that imports `redis` or `arq`.

keys.py names every key and channel; the queue (queue.py, enqueue_many.py, coalescer.py) says
"deliver X now / at T"; notices.py carries pub/sub notices between processes; rate_limits.py
and metrics.py keep what workers share; consumer.py runs queue tasks with arq's worker.
arq's unit of work (its "job") is called a queue task here: a job is a customer's AI job.
"""

from hookrelay.broker.client import answers_ping
from hookrelay.broker.coalescer import EnqueueCoalescer
from hookrelay.broker.connection import Broker
from hookrelay.broker.consumer import LaneConsumer, RetryTask
from hookrelay.broker.keys import Keys
from hookrelay.broker.metrics import MetricTotals
from hookrelay.broker.notices import CommitNotifier, Notices
from hookrelay.broker.queue import DeliveryQueue
from hookrelay.broker.rate_limits import RateSlots

__all__ = [
    "Broker",
    "CommitNotifier",
    "DeliveryQueue",
    "EnqueueCoalescer",
    "Keys",
    "LaneConsumer",
    "MetricTotals",
    "Notices",
    "RateSlots",
    "RetryTask",
    "answers_ping",
]
