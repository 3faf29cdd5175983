"""The event new labeled data sends, when a Prefect API is configured: `retrain`'s deployment trigger."""

from typing import Any

from prefect.events import emit_event
from prefect.settings import PREFECT_API_URL

DATA_ARRIVED = "mnist.data.arrived"


def emit_data_arrived(summary: dict[str, Any], added: int, source: str) -> bool:
    """`mnist.data.arrived` about the store's `summary()` after `added` new examples; False without an API."""
    if not PREFECT_API_URL.value():
        return False
    emit_event(
        event=DATA_ARRIVED,
        resource={"prefect.resource.id": f"mnist.data.{summary['digest']}", "prefect.resource.name": "labeled data"},
        payload={"added": added, "source": source, "examples": summary["examples"], "by_label": summary["by_label"]},
    )
    return True
