"""REST API of settlement: instructions, netting ratios, fails, payments and breaks.

Reads need the viewer role; the break actions (assign, comment, resolve, accept) need
operations. Bad input is a 400 with field errors or the service's constant message in
``detail``; a closed or concurrently changed break is a 409; an unknown object is a 404.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from backoffice import roles
from backoffice.audit.models import AuditEntry
from core import clock
from settlement import selectors
from settlement.models import Break, BreakComment, BreakCorrection, Instruction, Payment
from settlement.services import (
    break_accept,
    break_assign,
    break_comment,
    break_resolve,
)
from settlement.services.breaks import (
    BREAK_NOT_FOUND,
    BreakActionError,
    BreakConflict,
    BreakNotFound,
)
from trades.calendar import CalendarNotCoveredError
from trades.selectors import business_date

INSTRUCTION_NOT_FOUND = "There is no instruction {instruction_id}."
STATUS_FOR = {BreakNotFound: 404, BreakConflict: 409}


def refusal(error: BreakActionError) -> Response:
    return Response({"detail": str(error)}, status=STATUS_FOR.get(type(error), 400))


def paginated(
    request: Request,
    view: APIView,
    rows: Any,
    serializer: Any,
    context: dict[str, Any] | None = None,
) -> Response:
    paginator = LimitOffsetPagination()
    paginator.default_limit = 100
    page = paginator.paginate_queryset(rows, request, view=view)
    return paginator.get_paginated_response(serializer(page, many=True, context=context).data)


class ReadApi(APIView):
    permission_classes = (IsAuthenticated, roles.RolePermission)
    required_role = roles.VIEWER
    write_role = roles.OPERATIONS


# --- instructions ------------------------------------------------------------------------------


class InstructionOutput(serializers.ModelSerializer[Instruction]):
    class Meta:
        model = Instruction
        fields: tuple[str, ...] = (
            "instruction_id",
            "chain_id",
            "version",
            "kind",
            "status",
            "account",
            "counterparty",
            "instrument",
            "market",
            "settle_date",
            "currency",
            "payment_type",
            "net_quantity",
            "net_cash",
            "settled_quantity",
            "settled_cash",
            "supersedes",
            "superseded_by",
            "reason_code",
            "reason",
            "settled_on",
            "instructed_at",
            "status_changed_at",
        )


class InstructionDetailOutput(InstructionOutput):
    obligation_ids = serializers.SerializerMethodField()
    chain = serializers.SerializerMethodField()

    class Meta(InstructionOutput.Meta):
        fields = (*InstructionOutput.Meta.fields, "obligation_ids", "chain")

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_obligation_ids(self, obj: Instruction) -> list[str]:
        return selectors.instruction_obligation_ids(obj)

    @extend_schema(responses=InstructionOutput(many=True))
    def get_chain(self, obj: Instruction) -> list[dict[str, Any]]:
        versions = selectors.instructions_list(chain_id=obj.chain_id).order_by("version")
        return list(InstructionOutput(versions, many=True).data)


class InstructionListInput(serializers.Serializer[Any]):
    account = serializers.CharField(required=False, max_length=32)
    counterparty = serializers.CharField(required=False, max_length=32)
    instrument = serializers.CharField(required=False, max_length=12)
    status = serializers.ChoiceField(choices=Instruction.Status.choices, required=False)
    kind = serializers.ChoiceField(choices=Instruction.Kind.choices, required=False)
    settle_date = serializers.DateField(required=False)


class InstructionListApi(ReadApi):
    @extend_schema(parameters=[InstructionListInput], responses=InstructionOutput(many=True))
    def get(self, request: Request) -> Response:
        filters = InstructionListInput(data=request.query_params)
        filters.is_valid(raise_exception=True)
        rows = selectors.instructions_list(**filters.validated_data)
        return paginated(request, self, rows, InstructionOutput)


class InstructionDetailApi(ReadApi):
    @extend_schema(responses=InstructionDetailOutput)
    def get(self, request: Request, instruction_id: str) -> Response:
        row = selectors.instruction_get(instruction_id)
        if row is None:
            detail = INSTRUCTION_NOT_FOUND.format(instruction_id=instruction_id)
            return Response({"detail": detail}, status=status.HTTP_404_NOT_FOUND)
        return Response(InstructionDetailOutput(row).data)


class RatioInput(serializers.Serializer[Any]):
    date_from = serializers.DateField()
    date_to = serializers.DateField()


class RatioOutput(serializers.Serializer[Any]):
    settle_date = serializers.DateField()
    obligations = serializers.IntegerField()
    instructions = serializers.IntegerField()
    ratio = serializers.DecimalField(max_digits=12, decimal_places=4, allow_null=True)


class NettingRatioApi(ReadApi):
    @extend_schema(parameters=[RatioInput], responses=RatioOutput(many=True))
    def get(self, request: Request) -> Response:
        data = RatioInput(data=request.query_params)
        data.is_valid(raise_exception=True)
        rows = selectors.netting_ratios(**data.validated_data)
        return Response(RatioOutput(rows, many=True).data)


# --- fails and payments ------------------------------------------------------------------------


class FailOutput(serializers.Serializer[Any]):
    instruction_id = serializers.CharField(source="fail.instruction_id")
    account = serializers.CharField(source="fail.account")
    counterparty = serializers.CharField(source="fail.counterparty")
    instrument = serializers.CharField(source="fail.instrument")
    instrument_class = serializers.CharField(source="fail.instrument_class")
    currency = serializers.CharField(source="fail.currency")
    intended_settle_date = serializers.DateField(source="fail.intended_settle_date")
    reason_code = serializers.CharField(source="fail.reason_code")
    failed_quantity = serializers.DecimalField(
        source="fail.failed_quantity", max_digits=24, decimal_places=6
    )
    failed_value = serializers.DecimalField(
        source="fail.failed_value", max_digits=24, decimal_places=2
    )
    status = serializers.CharField(source="fail.status")
    settled_on = serializers.DateField(source="fail.settled_on")
    age = serializers.IntegerField()
    bucket = serializers.CharField(allow_null=True)
    penalties = serializers.DecimalField(max_digits=24, decimal_places=2)


def as_of_not_covered(error: CalendarNotCoveredError) -> serializers.ValidationError:
    """A 400 on ``as_of``: fails cannot be aged past the holidays loaded for their calendar."""
    return serializers.ValidationError({"as_of": [str(error)]})


class FailListInput(serializers.Serializer[Any]):
    as_of = serializers.DateField(required=False)
    account = serializers.CharField(required=False, max_length=32)
    status = serializers.ChoiceField(choices=["OPEN", "SETTLED", "CANCELLED"], required=False)
    bucket = serializers.ChoiceField(choices=["1", "2-3", "4-5", ">5"], required=False)


class FailListApi(ReadApi):
    @extend_schema(parameters=[FailListInput], responses=FailOutput(many=True))
    def get(self, request: Request) -> Response:
        filters = FailListInput(data=request.query_params)
        filters.is_valid(raise_exception=True)
        data = dict(filters.validated_data)
        bucket = data.pop("bucket", None)
        data["as_of"] = data.get("as_of") or business_date()
        try:
            rows = selectors.fails_list(**data)
        except CalendarNotCoveredError as error:
            raise as_of_not_covered(error) from None
        if bucket is not None:
            rows = [r for r in rows if r.bucket is not None and str(r.bucket) == bucket]
        return Response(FailOutput(rows, many=True).data)


class BucketOutput(serializers.Serializer[Any]):
    bucket = serializers.CharField()
    currency = serializers.CharField()
    count = serializers.IntegerField()
    failed_value = serializers.DecimalField(max_digits=24, decimal_places=2)


class FailsReportOutput(serializers.Serializer[Any]):
    as_of = serializers.DateField()
    open_fails = serializers.IntegerField()
    buckets = BucketOutput(many=True)
    penalties_to_date = serializers.DictField(
        child=serializers.DecimalField(max_digits=24, decimal_places=2)
    )


class AsOfInput(serializers.Serializer[Any]):
    as_of = serializers.DateField(required=False)


class FailsReportApi(ReadApi):
    @extend_schema(parameters=[AsOfInput], responses=FailsReportOutput)
    def get(self, request: Request) -> Response:
        data = AsOfInput(data=request.query_params)
        data.is_valid(raise_exception=True)
        as_of = data.validated_data.get("as_of") or business_date()
        try:
            report = selectors.fails_report(as_of=as_of)
        except CalendarNotCoveredError as error:
            raise as_of_not_covered(error) from None
        return Response(FailsReportOutput(report).data)


class PaymentOutput(serializers.ModelSerializer[Payment]):
    class Meta:
        model = Payment
        fields = (
            "end_to_end_id",
            "uetr",
            "message_type",
            "source",
            "reference",
            "instruction_id",
            "account",
            "debtor",
            "debtor_account",
            "debtor_agent",
            "creditor",
            "creditor_account",
            "creditor_agent",
            "amount",
            "currency",
            "value_date",
            "status",
            "remittance_information",
            "created_at",
        )


class PaymentListInput(serializers.Serializer[Any]):
    account = serializers.CharField(required=False, max_length=32)
    # ``source`` would shadow Field.source on a serializer: the query parameter is ``kind``.
    kind = serializers.ChoiceField(choices=Payment.Source.choices, required=False)
    status = serializers.ChoiceField(choices=Payment.Status.choices, required=False)
    value_date = serializers.DateField(required=False)


class PaymentListApi(ReadApi):
    @extend_schema(parameters=[PaymentListInput], responses=PaymentOutput(many=True))
    def get(self, request: Request) -> Response:
        filters = PaymentListInput(data=request.query_params)
        filters.is_valid(raise_exception=True)
        data = dict(filters.validated_data)
        rows = selectors.payments_list(source=data.pop("kind", None), **data)
        return paginated(request, self, rows, PaymentOutput)


# --- breaks ------------------------------------------------------------------------------------


class BreakOutput(serializers.ModelSerializer[Break]):
    age = serializers.SerializerMethodField()

    class Meta:
        model = Break
        fields: tuple[str, ...] = (
            "id",
            "account",
            "asset",
            "asset_type",
            "category",
            "status",
            "owner",
            "opened_as_of",
            "last_seen_as_of",
            "internal_value",
            "custodian_value",
            "difference",
            "amount",
            "amount_currency",
            "age",
            "resolution",
            "opened_at",
            "closed_at",
        )

    def get_age(self, obj: Break) -> int:
        # The list passes the business date in once; a single break reads it itself.
        as_of = self.context.get("as_of") or business_date()
        return selectors.break_age(obj, as_of)


class CommentOutput(serializers.ModelSerializer[BreakComment]):
    class Meta:
        model = BreakComment
        fields = ("id", "author", "text", "at")


class CorrectionOutput(serializers.ModelSerializer[BreakCorrection]):
    class Meta:
        model = BreakCorrection
        fields = (
            "reference",
            "asset_type",
            "asset",
            "amount",
            "value_date",
            "author",
            "reason",
            "at",
        )


class HistoryOutput(serializers.ModelSerializer[AuditEntry]):
    class Meta:
        model = AuditEntry
        fields = ("at", "actor_name", "action", "before", "after", "reason")


class BreakDetailOutput(BreakOutput):
    comments = CommentOutput(many=True, read_only=True)
    correction = serializers.SerializerMethodField()
    history = serializers.SerializerMethodField()

    class Meta(BreakOutput.Meta):
        fields = (*BreakOutput.Meta.fields, "comments", "correction", "history")

    @extend_schema(responses=CorrectionOutput(allow_null=True))
    def get_correction(self, obj: Break) -> dict[str, Any] | None:
        correction = BreakCorrection.objects.filter(break_record=obj).first()
        return dict(CorrectionOutput(correction).data) if correction is not None else None

    @extend_schema(responses=HistoryOutput(many=True))
    def get_history(self, obj: Break) -> list[dict[str, Any]]:
        return list(HistoryOutput(selectors.break_history(obj.pk), many=True).data)


class BreakListInput(serializers.Serializer[Any]):
    category = serializers.ChoiceField(choices=Break.Category.choices, required=False)
    account = serializers.CharField(required=False, max_length=32)
    owner = serializers.CharField(required=False, max_length=150)
    status = serializers.ChoiceField(choices=Break.Status.choices, required=False)
    open_only = serializers.BooleanField(required=False, default=False)
    min_age = serializers.IntegerField(required=False, min_value=0)


class BreakListApi(ReadApi):
    @extend_schema(parameters=[BreakListInput], responses=BreakOutput(many=True))
    def get(self, request: Request) -> Response:
        filters = BreakListInput(data=request.query_params)
        filters.is_valid(raise_exception=True)
        as_of = business_date()
        rows = selectors.breaks_list(today=as_of, **filters.validated_data)
        return paginated(request, self, rows, BreakOutput, context={"as_of": as_of})


class BreakDetailApi(ReadApi):
    @extend_schema(responses=BreakDetailOutput)
    def get(self, request: Request, break_id: int) -> Response:
        row = Break.objects.filter(pk=break_id).first()
        if row is None:
            return refusal(BreakNotFound(BREAK_NOT_FOUND.format(break_id=break_id)))
        return Response(BreakDetailOutput(row).data)


class AssignInput(serializers.Serializer[Any]):
    owner = serializers.CharField(max_length=150)


class CommentInput(serializers.Serializer[Any]):
    text = serializers.CharField(max_length=4000)


class ResolveInput(serializers.Serializer[Any]):
    reason = serializers.CharField(max_length=2000)
    amount = serializers.DecimalField(
        max_digits=24, decimal_places=6, required=False, allow_null=True
    )


class AcceptInput(serializers.Serializer[Any]):
    reason = serializers.CharField(max_length=2000)


class BreakAssignApi(ReadApi):
    @extend_schema(request=AssignInput, responses=BreakOutput)
    def post(self, request: Request, break_id: int) -> Response:
        data = AssignInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            row = break_assign(
                break_id=break_id,
                owner=data.validated_data["owner"],
                actor=request.user,
                now=clock.now(),
            )
        except BreakActionError as error:
            return refusal(error)
        return Response(BreakOutput(row).data)


class BreakCommentApi(ReadApi):
    @extend_schema(request=CommentInput, responses={201: CommentOutput})
    def post(self, request: Request, break_id: int) -> Response:
        data = CommentInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            comment = break_comment(
                break_id=break_id,
                text=data.validated_data["text"],
                actor=request.user,
                now=clock.now(),
            )
        except BreakActionError as error:
            return refusal(error)
        return Response(CommentOutput(comment).data, status=status.HTTP_201_CREATED)


class BreakResolveApi(ReadApi):
    @extend_schema(request=ResolveInput, responses=CorrectionOutput)
    def post(self, request: Request, break_id: int) -> Response:
        data = ResolveInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            correction = break_resolve(
                break_id=break_id,
                reason=data.validated_data["reason"],
                amount=data.validated_data.get("amount"),
                actor=request.user,
                now=clock.now(),
            )
        except BreakActionError as error:
            return refusal(error)
        return Response(CorrectionOutput(correction).data)


class BreakAcceptApi(ReadApi):
    @extend_schema(request=AcceptInput, responses=BreakOutput)
    def post(self, request: Request, break_id: int) -> Response:
        data = AcceptInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            row = break_accept(
                break_id=break_id,
                reason=data.validated_data["reason"],
                actor=request.user,
                now=clock.now(),
            )
        except BreakActionError as error:
            return refusal(error)
        return Response(BreakOutput(row).data)
