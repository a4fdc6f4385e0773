"""What the trades API remembers: each idempotency key and the response its request got."""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class IdempotencyKey(models.Model):
    """A ``POST /api/v1/trades/`` request seen under one user's ``Idempotency-Key``.

    The first request with a key stores its body's fingerprint and its response in the same
    transaction as its effect; a retry with the same key and body gets that response back, a
    different body under the same key is refused. Keys are per user, so two clients that happen to
    pick the same key do not collide.
    """

    # A plain id like the audit trail's: no foreign key across apps, the row outlives the user.
    user_id = models.BigIntegerField()
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64, help_text="sha256 of the canonical JSON body")
    response_status = models.PositiveSmallIntegerField()
    response_body = models.JSONField()
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user_id", "key"], name="uniq_idempotency_key"),
            models.CheckConstraint(
                condition=Q(response_status__gte=200, response_status__lt=600),
                name="idempotency_status_http",
            ),
            models.CheckConstraint(condition=~Q(key=""), name="idempotency_key_not_empty"),
        ]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created_idx")]

    def __str__(self) -> str:
        return f"user {self.user_id} key {self.key} -> {self.response_status}"
