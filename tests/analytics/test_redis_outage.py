"""Redis is never on the critical path: with Redis unreachable (a listener that drops every connection), ingestion
with an enabled event pipeline answers without waiting on the broker (one connection attempt, then the shared
breaker keeps everyone off Redis), its events still reach their alert through the outbox sweep, and the
analytics API and dashboard answer 200, uncached."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from alerts.models import AlertDelivery
from alerts.services import pipeline_create
from alerts.triggers import alerts_pending_sweep
from core import redis_breaker
from tests.conftest import redis_unreachable
from usage.models import EventOutbox, UsageEvent

from .browser.data import build

SECRET = "whsec-outage-0123456789"


@pytest.mark.django_db(transaction=True)
def test_ingestion_skips_a_dead_redis_and_the_sweep_delivers(
    workspace, product, make_client, receiver, settings, alert_settings
):
    # given: an enabled event pipeline, rate limiting on, and Redis (cache, limiter, broker) unreachable
    from catalog.services import feature_create

    feature_create(workspace=workspace, key="export", name="Export", product=product)
    pipeline_create(
        workspace=workspace,
        name="Exports",
        trigger={"type": "event", "features": ["export"]},
        destinations=[{"type": "webhook", "url": receiver.url(), "secret": SECRET}],
    )
    settings.UPTAKE_RATE_LIMIT_ENABLED = True
    api = make_client(workspace, "ingest")
    with redis_unreachable(settings) as dead:
        # when: 20 requests, each one event
        answers = [
            api.post(
                "/api/v1/events",
                {"events": [{"account_id": "acc-1", "feature_id": "export", "quantity": 1, "event_id": f"e{n}"}]},
                format="json",
            )
            for n in range(20)
        ]
        # then: all stored; Redis was tried once (the first request's rate limit), then skipped by everyone
        assert [a.status_code for a in answers] == [200] * 20
        assert [a.json()["accepted"] for a in answers] == [1] * 20
        assert dead.accepts == 1
        assert not redis_breaker.redis_available()
        assert UsageEvent.objects.count() == 20
        assert EventOutbox.objects.count() == 20
        assert receiver.requests == []
    # when: Redis is back and beat's sweep runs past the grace (deliveries queued, and sent, inline)
    from config.celery import app

    app.conf.task_always_eager = True
    try:
        evaluated = alerts_pending_sweep(
            now=timezone.now() + timedelta(seconds=settings.UPTAKE_ALERT_PENDING_GRACE_SECONDS + 1),
            grace=timedelta(seconds=settings.UPTAKE_ALERT_PENDING_GRACE_SECONDS),
        )
    finally:
        app.conf.task_always_eager = False
    # then: every event reached its alert
    assert evaluated == 20
    assert EventOutbox.objects.count() == 0
    assert sorted(r.json["details"]["event_id"] for r in receiver.requests) == sorted(f"e{n}" for n in range(20))
    assert set(AlertDelivery.objects.values_list("status", flat=True)) == {"sent"}


@pytest.mark.django_db(transaction=True)
def test_analytics_api_and_dashboard_answer_uncached_without_redis(settings, make_client):
    # given: rolled-up usage, a logged-in member, and the answers with Redis up
    built = build()
    client = Client()
    client.force_login(get_user_model().objects.get(username="carol"))
    api = make_client(built.workspace, "read")
    api_url = "/api/v1/products/default/analytics/feature-usage"
    pages = ["/", "/features/reports.view/", "/accounts/a1/", "/lists/dormant/", "/lists/usage-drop/"]
    up_api = api.get(api_url).json()
    up_pages = {path: client.get(path).status_code for path in pages}
    with redis_unreachable(settings) as dead:
        # when
        down_api = api.get(api_url)
        down_pages = {path: client.get(path).status_code for path in pages}
        # then: the same answers, computed (nothing could be cached), Redis tried once
        assert down_api.status_code == 200 and down_api.json() == up_api
        assert down_pages == up_pages == dict.fromkeys(pages, 200)
        assert dead.accepts == 1
        assert redis_breaker.trips >= 1
