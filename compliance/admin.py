"""Admin: rules and the restricted list are edited here; the queue and the facts are read-only.

Exceptions are decided only through the four-eyes API, never by editing a row, so their admin
pages cannot change anything.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from backoffice.audit.services import audit_record
from compliance import selectors, services
from compliance.models import (
    ComplianceException,
    ComplianceRule,
    ComplianceTrade,
    ExceptionProposal,
    ReferencePrice,
    RestrictedInstrument,
    VersionVerdict,
)
from compliance.rules import validate_config
from core import clock

RULE_FIELDS = (
    "code",
    "description",
    "enabled",
    "threshold",
    "params",
    "scope_books",
    "scope_accounts",
    "scope_instruments",
)


class ComplianceRuleForm(forms.ModelForm[ComplianceRule]):
    """Refuses a configuration the rules engine could not run (``validate_config``)."""

    class Meta:
        model = ComplianceRule
        fields = RULE_FIELDS

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        params = data.get("params") or {}
        if not isinstance(params, dict) or not all(
            isinstance(v, str | int) for v in params.values()
        ):
            self.add_error(
                "params", 'Enter an object of name: value, e.g. {"window_seconds": "300"}.'
            )
            return data
        if "code" not in data:
            return data
        config = selectors.rule_config(
            code=data["code"],
            enabled=data.get("enabled", True),
            threshold=data.get("threshold"),
            params=params,
            scope_books=data.get("scope_books") or [],
            scope_accounts=data.get("scope_accounts") or [],
            scope_instruments=data.get("scope_instruments") or [],
        )
        for problem in validate_config(config):
            self.add_error(None, problem)
        return data


def _rule_snapshot(rule: ComplianceRule) -> dict[str, Any]:
    return {name: getattr(rule, name) for name in RULE_FIELDS}


@admin.register(ComplianceRule)
class ComplianceRuleAdmin(admin.ModelAdmin[ComplianceRule]):
    form = ComplianceRuleForm
    list_display = ("code", "enabled", "threshold", "params", "scope_books", "scope_accounts")
    list_filter = ("enabled", "code")

    def save_model(
        self, request: HttpRequest, obj: ComplianceRule, form: Any, change: bool
    ) -> None:
        # Rule changes decide which trades pass, so each one is audited with before and after.
        before = None
        if change and obj.pk is not None:
            held = ComplianceRule.objects.filter(pk=obj.pk).first()
            before = _rule_snapshot(held) if held is not None else None
        super().save_model(request, obj, form, change)
        audit_record(
            actor=request.user,
            action="compliance.rule.change" if change else "compliance.rule.add",
            object_type="compliance.rule",
            object_id=obj.pk,
            at=clock.now(),
            before=before,
            after=_rule_snapshot(obj),
        )

    def delete_model(self, request: HttpRequest, obj: ComplianceRule) -> None:
        before, pk = _rule_snapshot(obj), obj.pk
        super().delete_model(request, obj)
        audit_record(
            actor=request.user,
            action="compliance.rule.delete",
            object_type="compliance.rule",
            object_id=pk or 0,
            at=clock.now(),
            before=before,
        )

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ComplianceRule]) -> None:
        for rule in queryset:  # one by one, so the bulk action is audited like a single delete
            self.delete_model(request, rule)


@admin.register(RestrictedInstrument)
class RestrictedInstrumentAdmin(admin.ModelAdmin[RestrictedInstrument]):
    list_display = ("isin", "reason", "added_by", "added_at")
    search_fields = ("isin", "reason")
    fields = ("isin", "reason", "added_by", "added_at")
    readonly_fields = ("added_by", "added_at")

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def save_model(
        self, request: HttpRequest, obj: RestrictedInstrument, form: Any, change: bool
    ) -> None:
        saved = services.restricted_instrument_add(
            isin=obj.isin, reason=obj.reason, actor=request.user, now=clock.now()
        )
        obj.pk, obj.added_by, obj.added_at = saved.pk, saved.added_by, saved.added_at

    def delete_model(self, request: HttpRequest, obj: RestrictedInstrument) -> None:
        services.restricted_instrument_remove(
            isin=obj.isin, actor=request.user, reason="removed in admin", now=clock.now()
        )

    def delete_queryset(
        self, request: HttpRequest, queryset: QuerySet[RestrictedInstrument]
    ) -> None:
        for entry in queryset:
            self.delete_model(request, entry)


class ReadOnlyAdmin(admin.ModelAdmin[Any]):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(ReferencePrice)
class ReferencePriceAdmin(ReadOnlyAdmin):
    list_display = ("isin", "price", "currency", "as_of", "source")
    search_fields = ("isin",)


@admin.register(ComplianceTrade)
class ComplianceTradeAdmin(ReadOnlyAdmin):
    list_display = ("trade_id", "version", "status", "validated_version", "account", "instrument")
    list_filter = ("status",)
    search_fields = ("trade_id", "account", "instrument")


@admin.register(VersionVerdict)
class VersionVerdictAdmin(ReadOnlyAdmin):
    list_display = ("trade_id", "trade_version", "passed", "failed_rules", "evaluated_at")
    list_filter = ("passed",)
    search_fields = ("trade_id",)


@admin.register(ComplianceException)
class ComplianceExceptionAdmin(ReadOnlyAdmin):
    list_display = ("id", "trade_id", "trade_version", "status", "account", "book", "created_at")
    list_filter = ("status", "book")
    search_fields = ("trade_id", "account")


@admin.register(ExceptionProposal)
class ExceptionProposalAdmin(ReadOnlyAdmin):
    list_display = ("exception", "action", "status", "proposed_by_name", "proposed_at")
    list_filter = ("status", "action")
