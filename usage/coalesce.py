"""Group commit for small ingestion requests that arrive together in one server process.

A single event costs one transaction: a dimension lookup, the insert, the dirty mark and a COMMIT with its WAL
flush, ~10× the database work per event of a 500-event batch. When requests of one workspace arrive while
another of them is being written (gunicorn's threads), the ones that waited are written together as one batch:

- The first request finds no write in progress for its workspace and leads: it writes what is pending (its own
  events) as one batch.
- Requests arriving meanwhile queue. When the write ends, the leader hands the lead to the first of them,
  which writes all queued requests as one batch, and so on. No request waits for a timer; under no
  concurrency every request is written alone, as before.
- Each request gets its own answer (accepted, duplicates, rejections with its own indexes). Events are in
  arrival order, so of two requests with the same `event_id` the first is stored and the second counts it as a
  duplicate, as between consecutive requests.
- The batch is one transaction: nothing is answered 200 before its COMMIT, and if the write fails (the
  database is unreachable) every request of the batch gets the error (503); nothing of it was stored.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .validation import ValidEvent


@dataclass
class _Request:
    events: Sequence[ValidEvent]
    done: threading.Event = field(default_factory=threading.Event)
    lead: bool = False
    result: object = None
    error: BaseException | None = None


class Coalescer:
    """Leader/follower group commit per key (the workspace). `write(events)` stores one batch and returns
    the store's result; `split(result, parts)` divides it into one result per request (see StoreResult.split)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[int, list[_Request]] = {}
        self._writing: set[int] = set()

    def submit(self, key: int, events: Sequence[ValidEvent], write: Callable, split: Callable):
        request = _Request(events)
        with self._lock:
            self._pending.setdefault(key, []).append(request)
            lead = key not in self._writing
            if lead:
                self._writing.add(key)
        if not lead:
            request.done.wait()
            if not request.lead:
                if request.error is not None:
                    raise request.error
                return request.result
        with self._lock:
            group = self._pending.pop(key)
        try:
            self._write_group(group, write, split)
        finally:
            with self._lock:
                waiting = self._pending.get(key)
                if waiting:
                    waiting[0].lead = True
                    waiting[0].done.set()
                else:
                    self._writing.discard(key)
            for other in group:
                if other is not request:
                    other.done.set()
        if request.error is not None:
            raise request.error
        return request.result

    @staticmethod
    def _write_group(group: list[_Request], write: Callable, split: Callable) -> None:
        if len(group) == 1:
            try:
                group[0].result = write(group[0].events)
            except BaseException as exc:
                group[0].error = exc
            return
        # One batch: each event gets a batch-wide index (its position), mapped back per request afterwards.
        combined: list[ValidEvent] = []
        parts: list[list[int]] = []
        for member in group:
            indexes = []
            for event in member.events:
                indexes.append(event.index)
                combined.append(dataclasses.replace(event, index=len(combined)))
            parts.append(indexes)
        try:
            results = split(write(combined), parts)
        except BaseException as exc:
            for member in group:
                member.error = exc
            return
        for member, result in zip(group, results, strict=True):
            member.result = result
