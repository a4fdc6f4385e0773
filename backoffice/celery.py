"""The Celery application: end-of-day and other scheduled work, with Redis as broker."""

from __future__ import annotations

import os

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backoffice.settings")

app = Celery("backoffice")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

app.conf.beat_schedule = {
    # End of day takes its business dates from the data, not from this clock, and is
    # idempotent: the schedule only decides how fresh the snapshots are (docs/pnl.md).
    "reporting-eod": {"task": "reporting.eod_run", "schedule": crontab(minute="*/15")},
    # Penalties accrue per business day and the task is idempotent per (fail, day).
    "settlement-accrue-fail-penalties": {
        "task": "settlement.accrue_fail_penalties",
        "schedule": crontab(hour=22, minute=0),
    },
}
