"""Group commit of small ingestion requests (usage/coalesce.py): requests arriving while another of their
workspace is being written are stored as one batch, each answered with its own result, against real
PostgreSQL from real threads."""

import threading
import time

import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from usage import services
from usage.coalesce import Coalescer
from usage.models import UsageEvent
from usage.services import events_ingest


def _wait_until(predicate, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


class _HeldFirstWrite:
    """Wraps usage_events_store: the first call waits until `queued` requests are pending behind it, so the
    next call is their grouped batch. Records each call's events (index, event id)."""

    def __init__(self, real, queued: int):
        self.real, self.queued, self.calls = real, queued, []
        self.lock = threading.Lock()

    def __call__(self, **kwargs):
        with self.lock:
            first = not self.calls
            self.calls.append([(e.index, e.event_id) for e in kwargs["events"]])
        if first:
            _wait_until(lambda: _queued() >= self.queued)
        return self.real(**kwargs)


def _queued() -> int:
    return sum(len(q) for q in services._coalescer._pending.values())


def _ingest_in_threads(workspace, payloads: list[list[dict]], *, writes_started) -> list[dict]:
    """Each payload in a thread of its own, in arrival order: a thread starts once the previous request is being
    written (the first, whose write the test holds until the others queue) or queued behind it, or once the
    grouped write started (every request has arrived by then). `writes_started()` counts the writes."""
    now = timezone.now()
    results: list[dict | BaseException] = [None] * len(payloads)

    def run(i: int) -> None:
        try:
            results[i] = events_ingest(workspace=workspace, payload=payloads[i], now=now).as_dict()
        except BaseException as exc:
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(payloads))]
    for arrived, thread in enumerate(threads, start=1):
        thread.start()
        _wait_until(lambda arrived=arrived: writes_started() >= 2 or writes_started() + _queued() >= arrived)
    for thread in threads:
        thread.join(10)
    return results


def _event(account: str, event_id: str | None = None, **extra) -> dict:
    event = {"account_id": account, "feature_id": "reports.export", **extra}
    if event_id:
        event["event_id"] = event_id
    return event


@pytest.mark.django_db(transaction=True)
def test_requests_arriving_during_a_write_are_stored_as_one_batch_each_with_its_own_answer(workspace, monkeypatch):
    # given the first request's write held until three more requests queue behind it
    held = _HeldFirstWrite(services.usage_events_store, queued=3)
    monkeypatch.setattr(services, "usage_events_store", held)
    payloads = [
        [_event("acme", "e-1")],
        [_event("acme", "e-2"), _event("globex", "e-1"), {"account_id": "acme"}],
        [_event("initech", "e-2"), _event("initech", "e-3", quantity=2)],
        [_event("acme", "e-4"), _event("acme", "e-4")],
    ]
    # when
    results = _ingest_in_threads(workspace, payloads, writes_started=lambda: len(held.calls))
    # then the first request was written alone, the other three together, in arrival order
    assert held.calls == [
        [(0, "e-1")],
        [(0, "e-2"), (1, "e-1"), (2, "e-2"), (3, "e-3"), (4, "e-4"), (5, "e-4")],
    ]
    assert results == [
        {"accepted": 1, "duplicates": 0, "ignored": 0, "rejected": [], "warnings": []},
        {
            "accepted": 1,
            "duplicates": 1,
            "ignored": 0,
            "rejected": [
                {"index": 2, "code": "missing_field", "field": "feature_id", "message": "'feature_id' is required."}
            ],
            "warnings": [],
        },
        {"accepted": 1, "duplicates": 1, "ignored": 0, "rejected": [], "warnings": []},
        {"accepted": 1, "duplicates": 1, "ignored": 0, "rejected": [], "warnings": []},
    ]
    stored = sorted(UsageEvent.objects.values_list("event_id", "account__external_id", "quantity"))
    assert stored == [("e-1", "acme", 1), ("e-2", "acme", 1), ("e-3", "initech", 2), ("e-4", "acme", 1)]


@pytest.mark.django_db(transaction=True)
def test_a_failed_grouped_write_fails_every_request_of_the_batch_and_stores_nothing(workspace, monkeypatch):
    # given the first write held until two requests queue, and the grouped write failing in the database
    real = services.usage_events_store
    calls = []

    def store(**kwargs):
        calls.append(len(kwargs["events"]))
        if len(calls) == 1:
            _wait_until(lambda: _queued() >= 2)
            return real(**kwargs)
        if len(calls) == 2:
            raise OperationalError("connection refused")
        return real(**kwargs)

    monkeypatch.setattr(services, "usage_events_store", store)
    payloads = [[_event("acme", "a")], [_event("acme", "b")], [_event("acme", "c")]]
    # when
    results = _ingest_in_threads(workspace, payloads, writes_started=lambda: len(calls))
    # then
    assert calls[:2] == [1, 2]
    assert results[0]["accepted"] == 1
    assert [type(r).__name__ for r in results[1:]] == ["OperationalError", "OperationalError"]
    assert list(UsageEvent.objects.values_list("event_id", flat=True)) == ["a"]
    # and the next request leads a write of its own (the lead was handed back)
    assert events_ingest(workspace=workspace, payload=[_event("acme", "d")], now=timezone.now()).accepted == 1
    assert calls == [1, 2, 1]


def test_calls_inside_a_transaction_are_written_alone(workspace, monkeypatch):
    # given
    submitted = []
    monkeypatch.setattr(services._coalescer, "submit", lambda *args: submitted.append(args))
    # when: the test runs inside a transaction, so even a one-event request is written alone
    small = events_ingest(workspace=workspace, payload=[_event("acme")], now=timezone.now())
    # then
    assert (small.accepted, submitted) == (1, [])


@pytest.mark.django_db(transaction=True)
def test_requests_over_the_size_are_written_alone(workspace, settings, monkeypatch):
    # given
    real_submit = services._coalescer.submit
    submitted = []

    def submit(key, events, *rest):
        submitted.append(len(events))
        return real_submit(key, events, *rest)

    monkeypatch.setattr(services._coalescer, "submit", submit)
    settings.UPTAKE_INGEST_COALESCE_MAX_EVENTS = 2
    # when
    large = events_ingest(workspace=workspace, payload=[_event("acme")] * 3, now=timezone.now())
    small = events_ingest(workspace=workspace, payload=[_event("acme")] * 2, now=timezone.now())
    # then
    assert (large.accepted, small.accepted, submitted) == (3, 2, [2])


def test_coalescer_hands_the_lead_over_and_never_loses_a_request():
    # given a write that takes a little time and records its batches
    coalescer = Coalescer()
    batches: list[list[int]] = []

    def write(events):
        batches.append([e.event_id for e in events])
        time.sleep(0.002)
        return [e.event_id for e in events]

    def split(result, parts):
        out, offset = [], 0
        for part in parts:
            out.append(result[offset : offset + len(part)])
            offset += len(part)
        return out

    from usage.validation import ValidEvent

    def event(n: int, index: int) -> ValidEvent:
        return ValidEvent(index, "a", None, None, None, "f", timezone.now(), 1, f"r{n}-{index}", None)

    answers: dict[int, list] = {}

    def client(n: int) -> None:
        answers[n] = coalescer.submit(7, [event(n, 0), event(n, 1)], write, split)

    # when 40 requests arrive from 8 threads
    threads = [threading.Thread(target=lambda k=k: [client(k * 5 + j) for j in range(5)]) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    # then every request got its own two events back, every event was written once, nothing is left behind
    assert len(answers) == 40
    assert all(answer == [f"r{n}-0", f"r{n}-1"] for n, answer in answers.items())
    assert sorted(e for batch in batches for e in batch) == sorted(f"r{n}-{i}" for n in range(40) for i in (0, 1))
    assert len(batches) < 40  # some requests were grouped
    assert (coalescer._pending, coalescer._writing) == ({}, set())
