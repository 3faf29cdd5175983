"""How much feedback one client may send: a rate (a token bucket) and a daily quota (a counter per UTC day),
kept in memory per client and shared by the service's threads."""

import ipaddress
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from mnist_pipeline.datastore import UNKNOWN_CLIENT

DEFAULT_RATE_PER_MINUTE = 30.0
DEFAULT_DAILY_QUOTA = 500
DAY_SECONDS = 86_400


@dataclass
class Allowance:
    tokens: float  # requests the client may send now; refilled at the rate, up to a minute's worth
    refilled_at: float
    today: int = 0  # requests counted on the current UTC day


class QuotaExceeded(Exception):
    """A request past a client's rate or daily quota: answered with 429 and `Retry-After: retry_after`."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class FeedbackQuota:
    """At most `rate_per_minute` requests a minute (in bursts of up to a minute's worth) and `daily` a UTC day per
    client. `clock` gives seconds since the epoch (a fake one in tests)."""

    def __init__(
        self,
        rate_per_minute: float = DEFAULT_RATE_PER_MINUTE,
        daily: int = DEFAULT_DAILY_QUOTA,
        clock: Callable[[], float] = time.time,
    ):
        if rate_per_minute <= 0:
            raise ValueError(f"the feedback rate must be positive (requests a minute), got {rate_per_minute}")
        if daily < 1:
            raise ValueError(f"the daily feedback quota must be at least 1, got {daily}")
        self.rate_per_minute, self.daily, self.clock = rate_per_minute, daily, clock
        self.burst = max(1.0, rate_per_minute)
        self._allowances: dict[str, Allowance] = {}
        self._day = -1
        self._lock = threading.Lock()

    def take(self, client: str) -> None:
        """Count one request of `client`, or QuotaExceeded (and nothing counted) when it is over either limit."""
        with self._lock:
            now = self.clock()
            day = int(now // DAY_SECONDS)
            if day != self._day:  # a new day: every count starts again, and idle clients are forgotten
                self._day, self._allowances = day, {}
            allowance = self._allowances.setdefault(client, Allowance(self.burst, now))
            rate = self.rate_per_minute / 60
            allowance.tokens = min(self.burst, allowance.tokens + (now - allowance.refilled_at) * rate)
            allowance.refilled_at = now
            if allowance.today >= self.daily:
                raise QuotaExceeded(
                    f"daily feedback quota of {self.daily} reached for this client; send more after 00:00 UTC",
                    retry_after=max(1, math.ceil((day + 1) * DAY_SECONDS - now)),
                )
            if allowance.tokens < 1:
                wait = max(1, math.ceil((1 - allowance.tokens) / rate))
                raise QuotaExceeded(
                    f"feedback rate of {self.rate_per_minute:g} a minute exceeded for this client; retry in {wait} s",
                    retry_after=wait,
                )
            allowance.tokens -= 1
            allowance.today += 1


def client_identity(address: str | None) -> str:
    """Who sent a request, as the quota and the data store know it: its address; an IPv6 address by its /64, which
    one machine is usually given whole."""
    if not address:
        return UNKNOWN_CLIENT
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address[:100]
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)
