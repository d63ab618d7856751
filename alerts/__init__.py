"""Alert pipelines: trigger → filter → enrichment → destinations, delivered by Celery. Above analytics in the
import map; ingestion reaches it only through usage's events outbox (usage/outbox.py)."""
