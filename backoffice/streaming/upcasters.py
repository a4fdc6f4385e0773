"""Upcasters: each raises a payload one schema version (see ``schemas.Upcaster``)."""

from __future__ import annotations

from backoffice.streaming.schemas import Upcaster

UPCASTERS: list[Upcaster] = []
