"""Each client's feedback rate and daily quota: the bucket on a fake clock, and a flood against the service."""

import threading

import pytest
from fastapi.testclient import TestClient

from mnist_pipeline import settings
from mnist_pipeline.datastore import DataStore, client_of
from mnist_pipeline.flows.cli import main
from mnist_pipeline.registry import Registry
from mnist_pipeline.serving.app import create_app
from mnist_pipeline.serving.model_slot import ModelSlot
from mnist_pipeline.serving.quota import DAY_SECONDS, FeedbackQuota, QuotaExceeded, client_identity
from tests.serving.conftest import encoded

NOON = 20_000 * DAY_SECONDS + DAY_SECONDS / 2


class FakeClock:
    def __init__(self, now: float = NOON):
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_burst_of_a_minutes_worth_then_one_request_per_refill_with_the_wait_to_retry():
    clock = FakeClock()
    quota = FeedbackQuota(rate_per_minute=6, daily=100, clock=clock)
    for _ in range(6):
        quota.take("a")
    with pytest.raises(QuotaExceeded, match="rate of 6 a minute exceeded for this client; retry in 10 s") as refused:
        quota.take("a")
    assert refused.value.retry_after == 10
    quota.take("b")  # another client has its own bucket
    clock.now += 10
    quota.take("a")
    with pytest.raises(QuotaExceeded):
        quota.take("a")


def test_the_daily_quota_holds_whatever_the_rate_and_starts_again_at_midnight_utc():
    clock = FakeClock()
    quota = FeedbackQuota(rate_per_minute=600, daily=3, clock=clock)
    for _ in range(3):
        quota.take("a")
    clock.now += 3600  # the bucket is full again, the day's count is not
    with pytest.raises(QuotaExceeded, match="daily feedback quota of 3 reached") as refused:
        quota.take("a")
    assert refused.value.retry_after == DAY_SECONDS / 2 - 3600
    clock.now = NOON + DAY_SECONDS / 2  # 00:00 UTC
    quota.take("a")


def test_refused_requests_count_nothing_and_threads_never_take_more_than_the_quota():
    quota = FeedbackQuota(rate_per_minute=50, daily=1000, clock=FakeClock())
    taken = []

    def flood() -> None:
        for _ in range(40):
            try:
                quota.take("a")
                taken.append(1)
            except QuotaExceeded:
                pass

    threads = [threading.Thread(target=flood) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(taken) == 50


@pytest.mark.parametrize(
    "address, client",
    [
        ("10.0.0.7", "10.0.0.7"),
        ("2001:db8::1", "2001:db8::/64"),
        ("2001:db8::ffff:1", "2001:db8::/64"),  # the same machine's /64
        ("::ffff:10.0.0.7", "10.0.0.7"),
        (None, "unknown"),
        ("testclient", "testclient"),
    ],
)
def test_a_client_is_its_address_and_an_ipv6_client_its_64(address, client):
    assert client_identity(address) == client


@pytest.mark.parametrize("rate, daily, problem", [(0, 5, "rate must be positive"), (5, 0, "quota must be at least 1")])
def test_limits_that_let_nothing_through_are_refused(rate, daily, problem):
    with pytest.raises(ValueError, match=problem):
        FeedbackQuota(rate_per_minute=rate, daily=daily)


def test_a_flood_is_answered_429_with_retry_after_and_nothing_past_the_quota_is_stored(artifacts_dir, subset):
    clock = FakeClock()
    store = DataStore(settings.data_store_location())
    app = create_app(
        ModelSlot(Registry(artifacts_dir / "models"), poll_seconds=3600),  # no model: feedback needs none
        store,
        feedback_quota=FeedbackQuota(rate_per_minute=3, daily=5, clock=clock),
    )
    digits = [encoded(subset.train_images[index], "PNG") for index in range(12)]
    with TestClient(app, client=("10.0.0.7", 50000)) as client:
        answers = [client.post(f"/feedback?label={subset.train_labels[i]}", content=digits[i]) for i in range(6)]
        assert [answer.status_code for answer in answers] == [200, 200, 200, 429, 429, 429]
        refused = answers[-1]
        assert refused.headers["Retry-After"] == "20" and list(refused.json()) == ["error"]
        assert "feedback rate of 3 a minute exceeded" in refused.json()["error"]
        assert store.count() == 3
        other = TestClient(app, client=("10.0.0.8", 50000))  # another client, not held up (the app is started)
        assert other.post(f"/feedback?label={subset.train_labels[11]}", content=digits[11]).status_code == 200
        clock.now += 60
        answers = [client.post(f"/feedback?label={subset.train_labels[i]}", content=digits[i]) for i in range(6, 9)]
        assert [answer.status_code for answer in answers] == [200, 200, 429]
        assert "daily feedback quota of 5 reached" in answers[-1].json()["error"]
    clients = [client_of(record) for record in store.examples()]
    assert sorted(clients) == ["10.0.0.7"] * 5 + ["10.0.0.8"]


@pytest.mark.parametrize(
    "options, message",
    [
        (["--feedback-rate-per-minute", "0"], "--feedback-rate-per-minute must be positive, got 0"),
        (["--feedback-daily-quota", "0"], "--feedback-daily-quota must be at least 1, got 0"),
    ],
)
def test_serve_refuses_a_quota_that_lets_nothing_through_in_one_line(options, message, capsys, artifacts_dir):
    assert main(["serve", *options]) == 1
    error = capsys.readouterr().err
    assert message in error and error.splitlines() == [error.strip()], error
