"""Audit entries: who did what to which object, before and after, and why.

Rows are append-only: a database trigger refuses UPDATE and DELETE, so not even a bug or a
superuser's shell can rewrite history. The actor's name is frozen in the row so it survives the
user's deletion or renaming.
"""

from __future__ import annotations

from django.db import models


class AuditEntry(models.Model):
    at = models.DateTimeField()
    # A plain id, not a foreign key: deleting a user must not touch (UPDATE) the audit rows.
    actor_id = models.BigIntegerField(null=True)
    actor_name = models.CharField(max_length=150)
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True)
    request_id = models.CharField(max_length=64, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["object_type", "object_id", "at"], name="audit_object_idx"),
            models.Index(fields=["actor_name", "-at"], name="audit_actor_idx"),
        ]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_name} {self.action} {self.object_type}:{self.object_id}"
