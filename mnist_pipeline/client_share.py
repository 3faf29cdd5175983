"""No client of the service more than a share of the new examples a model learns from, so that one client
cannot flood the training data. Imported folders (`add-data`, source `import:...`) are the operator's own: never
left out, but counted in the whole."""

import os
from collections import Counter
from typing import Any

from pydantic import BaseModel

from mnist_pipeline.datastore import client_of
from mnist_pipeline.errors import PipelineError

MAX_CLIENT_SHARE_VARIABLE = "MNIST_MAX_CLIENT_SHARE"
DEFAULT_MAX_CLIENT_SHARE = 0.2


class ClientShares(BaseModel):
    """Who sent the examples of one part (trained on, or held out) and what the cap left out."""

    max_share: float
    cap: int | None  # the most examples one client keeps; None: nobody is over the share
    sent: dict[str, int]  # client: its examples, before the cap
    left_out: dict[str, int]  # client: its examples left out (its newest; its oldest are kept)
    imported: int


def is_imported(record: dict[str, Any]) -> bool:
    return str(record.get("source", "")).startswith("import:")


def largest_cap(counts: list[int], imported: int, max_share: float) -> int:
    """The most examples each client may keep so that none holds over `max_share` of what is kept: the largest c
    with c <= max_share * (imported + sum(min(n, c))). The right side grows slower than c once enough clients are
    capped, so the c that fit are 0..c*: found by bisection."""
    low, high = 0, max(counts, default=0)
    while low < high:
        middle = (low + high + 1) // 2
        if middle <= max_share * (imported + sum(min(count, middle) for count in counts)):
            low = middle
        else:
            high = middle - 1
    return low


def cap_clients(records: list[dict[str, Any]], max_share: float) -> tuple[list[dict[str, Any]], ClientShares]:
    """`records` with each client's examples past the cap left out (its newest, by `added_at` then digest), in their
    order, and what was left out."""
    sent = Counter(client_of(record) for record in records if not is_imported(record))
    imported = len(records) - sum(sent.values())
    cap = None if max_share >= 1 else largest_cap(list(sent.values()), imported, max_share)
    if cap is not None and all(count <= cap for count in sent.values()):
        cap = None
    kept_ids: set[int] = set()
    by_client: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        if is_imported(record):
            kept_ids.add(id(record))
        else:
            by_client.setdefault(client_of(record), []).append(record)
    for own in by_client.values():
        oldest = sorted(own, key=lambda record: (record.get("added_at", ""), record["sha256"]))
        kept_ids.update(id(record) for record in oldest[: len(oldest) if cap is None else cap])
    kept = [record for record in records if id(record) in kept_ids]
    left_out = Counter(client_of(record) for record in records if id(record) not in kept_ids)
    shares = ClientShares(
        max_share=max_share,
        cap=cap,
        sent=dict(sorted(sent.items())),
        left_out=dict(sorted(left_out.items())),
        imported=imported,
    )
    return kept, shares


def max_client_share() -> float:
    """$MNIST_MAX_CLIENT_SHARE (default 0.2), or one line naming the bad value."""
    text = os.environ.get(MAX_CLIENT_SHARE_VARIABLE, "").strip()
    if not text:
        return DEFAULT_MAX_CLIENT_SHARE
    try:
        share = float(text)
    except ValueError:
        share = -1.0
    if not 0 < share <= 1:
        raise PipelineError(
            f"{MAX_CLIENT_SHARE_VARIABLE}={text[:20]!r}: the most one client may send of the new examples must be a "
            "fraction above 0 and at most 1 (e.g. 0.2; 1 caps nothing)"
        )
    return share
