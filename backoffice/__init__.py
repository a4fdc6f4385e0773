"""The back office Django project; importing it makes the Celery app available to Django."""

from backoffice.celery import app as celery_app

__all__ = ["celery_app"]
