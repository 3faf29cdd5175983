"""The global concurrency limit `mnist-training`: one training at a time on this machine's cores, whichever
deployment or command started it. A deployment's `concurrency_limit` covers only its own runs."""

from collections.abc import Iterator
from contextlib import contextmanager

from prefect import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

TRAINING_LIMIT = "mnist-training"


def ensure_training_limit(slots: int = 1) -> None:
    """Create the limit with `slots` unless it exists (Prefect skips a limit that does not exist)."""
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(TRAINING_LIMIT)
        except ObjectNotFound:
            try:
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=TRAINING_LIMIT, limit=slots))
            except ObjectAlreadyExists:
                pass  # another run created it meanwhile


@contextmanager
def training_slot() -> Iterator[None]:
    """Hold the training slot for the block, waiting in line while another training holds it."""
    ensure_training_limit()
    with concurrency(TRAINING_LIMIT, occupy=1, strict=True):
        yield
