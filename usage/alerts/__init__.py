"""Alert pipelines: trigger → filter → enrichment → destinations, delivered by Celery (see DESIGN.md)."""
