"""uptake_client's event pipeline against a real Uptake server: exactly-once delivery from many threads,
through a server restart, a database outage (503) and the rate limit (429); rejections reported per event;
a full queue; a forked child; sync mode; the flush at interpreter exit."""

import gzip
import json
import logging
import os
import subprocess
import sys
import threading
import time

import pytest
from uptake_client import EventsDropped, EventsRejected, Uptake

from tests.clients.conftest import ROOT, RecordingTransport, drop_connections, stored_ids, wait_for
from tests.conftest import database_unreachable
from usage.models import UsageEvent

pytestmark = pytest.mark.django_db(transaction=True)


def test_10000_events_from_8_threads_arrive_exactly_once(make_uptake):
    # given
    uptake = make_uptake(max_queue_size=20_000)
    ids: list[list[str]] = [[] for _ in range(8)]
    barrier = threading.Barrier(8)

    def send(slot: int) -> None:
        barrier.wait(10)
        for n in range(1250):
            ids[slot].append(uptake.track(f"acct-{n % 20}", f"feature.{slot}", user_id=f"u-{n % 7}", quantity=2))

    threads = [threading.Thread(target=send, args=(slot,)) for slot in range(8)]
    # when
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    delivered = uptake.flush(timeout=120)
    # then
    tracked = sorted(event_id for chunk in ids for event_id in chunk)
    assert delivered is True
    assert len(set(tracked)) == 10_000
    assert stored_ids() == tracked
    assert sum(UsageEvent.objects.values_list("quantity", flat=True)) == 20_000
    stats = uptake.stats()
    assert (stats.tracked, stats.accepted, stats.duplicates, stats.rejected, stats.dropped) == (10_000, 10_000, 0, 0, 0)
    assert (stats.queued, stats.in_flight) == (0, 0)
    assert stats.batches >= 20  # at most 500 events a request


def test_batches_are_gzip_and_carry_an_event_id_and_timestamp_per_event(make_uptake):
    # given
    transport = RecordingTransport()
    uptake = make_uptake(transport=transport)
    # when
    first = uptake.track("acme", "export.pdf", user_id="u1", quantity=3, properties={"pages": 12})
    second = uptake.track("acme", "export.pdf", event_id="my-own-id")
    assert uptake.flush(timeout=10)
    # then
    posts = [r for r in transport.requests if r.url.path == "/api/v1/events"]
    assert [r.headers["content-encoding"] for r in posts] == ["gzip"] * len(posts)
    events = [e for r in posts for e in json.loads(gzip.decompress(r.content))["events"]]
    assert second == "my-own-id"
    assert [e["event_id"] for e in events] == [first, second]
    assert len(first) == 36 and first.count("-") == 4  # a UUID
    assert events[0]["properties"] == {"pages": 12} and events[0]["timestamp"].endswith("+00:00")
    assert sorted(UsageEvent.objects.values_list("event_id", "quantity")) == [(first, 3), ("my-own-id", 1)]


def test_a_batch_with_one_bad_event_stores_the_others_and_reports_the_bad_one(make_uptake):
    # given
    errors: list = []
    uptake = make_uptake(on_error=errors.append, flush_interval=60)
    good = [uptake.track("acme", "export.pdf") for _ in range(3)]
    bad = uptake.track("acme", "export.pdf", quantity=10**10)
    # when
    assert uptake.flush(timeout=10)
    # then
    assert stored_ids() == sorted(good)
    assert len(errors) == 1 and isinstance(errors[0], EventsRejected)
    assert errors[0].status_code == 200
    [rejection] = errors[0].rejections
    assert (rejection.index, rejection.code, rejection.event["event_id"]) == (3, "quantity_out_of_range", bad)
    stats = uptake.stats()
    assert (stats.accepted, stats.rejected, stats.retries, stats.dropped) == (3, 1, 0, 0)


def test_a_refused_batch_is_reported_per_event_and_not_retried(live_server, workspace, make_key):
    # given a key without the ingest scope: the server answers 403
    _, read_only = make_key(workspace, "read")
    errors: list = []
    uptake = Uptake(api_key=read_only, host=live_server.url, on_error=errors.append, flush_interval=0.05)
    ids = [uptake.track("acme", "export.pdf") for _ in range(2)]
    # when
    assert uptake.flush(timeout=10)
    uptake.shutdown()
    # then
    assert UsageEvent.objects.count() == 0
    assert [type(e) for e in errors] == [EventsRejected]
    assert errors[0].status_code == 403
    assert [(r.code, r.event["event_id"]) for r in errors[0].rejections] == [("permission_denied", i) for i in ids]
    assert (uptake.stats().rejected, uptake.stats().retries) == (2, 0)


def test_a_database_outage_503_is_retried_after_the_servers_retry_after(make_uptake, settings, caplog):
    # given a database that does not answer, and a server that says to retry after 1 s
    settings.UPTAKE_RETRY_AFTER_SECONDS = 1
    uptake = make_uptake()
    caplog.set_level(logging.WARNING, logger="uptake_client")
    drop_connections(uptake)
    with database_unreachable():
        ids = [uptake.track("acme", "export.pdf") for _ in range(5)]
        # when the first attempt has been answered 503
        wait_for(lambda: uptake.stats().retries >= 1, what="a 503 and a retry")
    # then the retry (database back) stores every event once
    assert uptake.flush(timeout=30)
    assert stored_ids() == sorted(ids)
    retries = [r for r in caplog.records if getattr(r, "uptake_status", None) == 503]
    assert retries and all(r.uptake_retry_after == 1.0 and r.uptake_delay >= 1.0 for r in retries)
    assert (uptake.stats().accepted, uptake.stats().dropped) == (5, 0)


def test_a_429_is_retried_after_the_servers_retry_after(make_uptake, settings, caplog):
    # given a rate limit of one request, refilled at one token per 2 s (Retry-After: 2)
    settings.UPTAKE_RATE_LIMIT_ENABLED = True
    settings.UPTAKE_RATE_BURST = 1
    settings.UPTAKE_RATE_PER_SECOND = 0.5
    uptake = make_uptake(batch_size=2, flush_interval=60)
    caplog.set_level(logging.WARNING, logger="uptake_client")
    ids = [uptake.track("acme", "export.pdf") for _ in range(4)]
    # when
    started = time.monotonic()
    assert uptake.flush(timeout=30)
    # then both batches are stored, the second after waiting what the server asked for
    assert time.monotonic() - started >= 2.0
    assert stored_ids() == sorted(ids)
    retries = [r for r in caplog.records if getattr(r, "uptake_status", None) == 429]
    assert retries and all(r.uptake_retry_after == 2.0 and r.uptake_delay >= 2.0 for r in retries)
    assert uptake.stats().accepted == 4


def test_server_stopped_and_restarted_while_events_are_queued_loses_and_doubles_nothing(gunicorn, workspace, make_key):
    # given a client sending to gunicorn
    _, key = make_key(workspace, "ingest")
    gunicorn.start()
    errors: list = []
    uptake = Uptake(
        api_key=key,
        host=gunicorn.url,
        on_error=errors.append,
        batch_size=100,
        flush_interval=0.02,
        backoff_base=0.05,
        backoff_cap=0.3,
        timeout=5,
    )
    ids = [uptake.track(f"acct-{n % 5}", "export.pdf") for n in range(1000)]
    wait_for(lambda: uptake.stats().accepted > 0, what="a first batch stored")
    # when the server is killed while batches are queued and in flight, more are tracked, and it comes back
    gunicorn.kill()
    ids += [uptake.track(f"acct-{n % 5}", "export.pdf") for n in range(1000)]
    wait_for(lambda: uptake.stats().retries >= 2, what="retries against the stopped server")
    assert uptake.stats().queued + uptake.stats().in_flight > 0
    gunicorn.start()
    delivered = uptake.flush(timeout=60)
    uptake.shutdown()
    # then every event is stored exactly once
    assert delivered is True
    assert stored_ids() == sorted(ids)
    stats = uptake.stats()
    assert stats.accepted + stats.duplicates == 2000  # a batch stored before the kill may be answered twice
    assert (stats.dropped, stats.rejected, errors) == (0, 0, [])


def test_a_full_queue_drops_counts_and_reports_without_blocking(ingest_key, db):
    # given a server that is not there, and a queue of 10
    errors: list = []
    uptake = Uptake(
        api_key=ingest_key,
        host="http://127.0.0.1:9",
        on_error=errors.append,
        max_queue_size=10,
        flush_interval=60,
        backoff_base=0.05,
        backoff_cap=0.1,
    )

    def full_drops() -> int:
        return sum(e.count for e in errors if isinstance(e, EventsDropped) and e.reason == "queue_full")

    # when 15 are tracked (a full queue wakes a sender, which takes what it holds: how many more fit depends
    # on when it does)
    started = time.monotonic()
    for _ in range(15):
        uptake.track("acme", "export.pdf")
    elapsed = time.monotonic() - started
    # then those that did not fit were dropped at once, counted and reported
    assert elapsed < 1.0
    queued = uptake.stats().tracked
    assert 10 <= queued < 15
    wait_for(lambda: full_drops() == 15 - queued, what="the queue_full report")
    assert uptake.stats().dropped == 15 - queued
    # and shutting down gives up on the rest after its timeout, reported too
    assert uptake.shutdown(timeout=0.3) is False
    assert uptake.stats().dropped == 15
    shutdown = sum(e.count for e in errors if isinstance(e, EventsDropped) and e.reason == "shutdown")
    assert (full_drops(), shutdown) == (15 - queued, queued)


def test_an_event_too_large_for_any_batch_is_dropped_and_reported_and_the_rest_sent(make_uptake):
    # given batches of at most 2 KiB, and one event of 3 KiB
    errors: list = []
    uptake = make_uptake(max_batch_bytes=2048, on_error=errors.append, flush_interval=60)
    small = uptake.track("acme", "export.pdf")
    uptake.track("acme", "export.pdf", properties={"pad": "x" * 3000})
    # when
    assert uptake.flush(timeout=10)
    # then
    assert stored_ids() == [small]
    assert [(type(e), e.reason, e.count) for e in errors] == [(EventsDropped, "too_large", 1)]
    assert (uptake.stats().accepted, uptake.stats().dropped) == (1, 1)


def test_sync_mode_sends_before_track_returns(make_uptake):
    # given
    uptake = make_uptake(sync_mode=True)
    # when
    event_id = uptake.track("acme", "export.pdf", quantity=2)
    # then
    assert list(UsageEvent.objects.values_list("event_id", "quantity")) == [(event_id, 2)]
    assert uptake.stats().accepted == 1


def test_a_forked_childs_events_arrive_and_the_parents_queue_stays_the_parents(make_uptake):
    # given a parent with events still queued at the fork
    uptake = make_uptake(flush_interval=60)
    parent_ids = [uptake.track("acme", "export.pdf") for _ in range(3)]
    read_end, write_end = os.pipe()
    # when a forked child tracks and flushes its own events
    pid = os.fork()
    if pid == 0:  # the child: report its counters through the pipe, never return into pytest
        code = 1
        try:
            child_ids = [uptake.track("acme", "child.feature") for _ in range(50)]
            ok = uptake.flush(timeout=30)
            stats = uptake.stats()
            os.write(write_end, json.dumps([ok, child_ids, stats.accepted, stats.duplicates]).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        ok, child_ids, accepted, duplicates = json.loads(pipe.read())
    _, status = os.waitpid(pid, 0)
    assert uptake.flush(timeout=30)
    # then the child sent its 50 (and not the parent's 3), and the parent its 3
    assert (os.waitstatus_to_exitcode(status), ok, accepted, duplicates) == (0, True, 50, 0)
    assert stored_ids() == sorted(parent_ids + child_ids)
    assert uptake.stats().accepted == 3


def test_events_left_in_the_queue_are_sent_at_interpreter_exit(live_server, ingest_key):
    # given a program that tracks and exits without flushing
    program = (
        "from uptake_client import Uptake\n"
        "import sys\n"
        f"u = Uptake(api_key={ingest_key!r}, host={live_server.url!r}, flush_interval=3600)\n"
        "print(','.join(u.track('acme', 'exit.feature') for _ in range(7)))\n"
    )
    # when
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, cwd=ROOT, timeout=60)
    # then
    assert result.returncode == 0, result.stderr
    assert stored_ids() == sorted(result.stdout.strip().split(","))
