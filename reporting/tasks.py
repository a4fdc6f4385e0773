"""Celery tasks of the reporting app (scheduled in ``backoffice/celery.py``)."""

from __future__ import annotations

from celery import shared_task

from core import clock
from reporting.services import eod_run_pending


@shared_task(name="reporting.eod_run")
def eod_run() -> list[str]:
    """End of day for every business date the data has reached; returns the dates built."""
    return [r.business_date.isoformat() for r in eod_run_pending(now=clock.now())]
