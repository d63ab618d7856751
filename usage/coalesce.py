"""Group commit for small ingestion requests that arrive together in one server process: requests of a workspace
that wait while another of its requests is written are written together as one batch, each with its own answer.
The protocol (lead hand-over, ordering, failures): docs/internals.md ("Group commit")."""

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
