"""The Celery app. Broker: Redis when REDIS_URL is set, else a filesystem queue under .uptake/ (see README)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("uptake")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
