"""REST API of the exception queue: list, detail, and the four-eyes actions.

Reads need the viewer role; propose and withdraw need operations; confirm needs approver (the
services check roles again, and that the checker is not the maker). Bad input is a 400 with field
errors; a refusal is 403 (role, maker = checker) or 409 (state) with the service's constant
message in ``detail``; an unknown exception is 404.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from backoffice import roles
from compliance import errors, selectors, services
from compliance.models import ComplianceException, ExceptionProposal
from core import clock

STATUS_FOR = {
    errors.Forbidden: status.HTTP_403_FORBIDDEN,
    errors.Conflict: status.HTTP_409_CONFLICT,
    errors.NotFound: status.HTTP_404_NOT_FOUND,
    errors.Invalid: status.HTTP_400_BAD_REQUEST,
}


def refusal(error: errors.ComplianceError) -> Response:
    return Response({"detail": error.message}, status=STATUS_FOR[type(error)])


class EvaluationOutput(serializers.Serializer[Any]):
    """One rule row's result (expanded from the version's verdict row), as the rule rows were."""

    rule_id = serializers.IntegerField()
    code = serializers.CharField(max_length=40)
    passed = serializers.BooleanField()
    detail = serializers.CharField()
    evaluated_at = serializers.DateTimeField()


class ProposalOutput(serializers.ModelSerializer[ExceptionProposal]):
    class Meta:
        model = ExceptionProposal
        fields = (
            "id",
            "action",
            "status",
            "reason",
            "proposed_by_name",
            "proposed_at",
            "resolved_by_name",
            "resolved_at",
        )


class ExceptionOutput(serializers.ModelSerializer[ComplianceException]):
    class Meta:
        model = ComplianceException
        fields: tuple[str, ...] = (
            "id",
            "trade_id",
            "trade_version",
            "account",
            "book",
            "status",
            "failed_rules",
            "created_at",
            "resolved_at",
        )


class ExceptionDetailOutput(ExceptionOutput):
    payload = serializers.JSONField()
    evaluations = serializers.SerializerMethodField()
    proposals = serializers.SerializerMethodField()

    class Meta(ExceptionOutput.Meta):
        fields = (*ExceptionOutput.Meta.fields, "payload", "evaluations", "proposals")

    @extend_schema(responses=EvaluationOutput(many=True))
    def get_evaluations(self, obj: ComplianceException) -> list[dict[str, Any]]:
        return list(EvaluationOutput(selectors.exception_evaluations(obj), many=True).data)

    @extend_schema(responses=ProposalOutput(many=True))
    def get_proposals(self, obj: ComplianceException) -> list[dict[str, Any]]:
        return list(ProposalOutput(selectors.exception_proposals(obj), many=True).data)


class ExceptionListInput(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=ComplianceException.Status.choices, required=False)
    account = serializers.CharField(required=False, max_length=32)
    book = serializers.CharField(required=False, max_length=32)


class ProposeInput(serializers.Serializer[Any]):
    action = serializers.ChoiceField(choices=ExceptionProposal.Action.choices)
    reason = serializers.CharField(max_length=2000, trim_whitespace=True)


class ExceptionListApi(APIView):
    permission_classes = (IsAuthenticated, roles.RolePermission)
    required_role = roles.VIEWER

    @extend_schema(parameters=[ExceptionListInput], responses=ExceptionOutput(many=True))
    def get(self, request: Request) -> Response:
        filters = ExceptionListInput(data=request.query_params)
        filters.is_valid(raise_exception=True)
        paginator = LimitOffsetPagination()
        paginator.default_limit = 50
        page = paginator.paginate_queryset(
            selectors.exception_list(**filters.validated_data), request, view=self
        )
        return paginator.get_paginated_response(ExceptionOutput(page, many=True).data)


class ExceptionDetailApi(APIView):
    permission_classes = (IsAuthenticated, roles.RolePermission)
    required_role = roles.VIEWER

    @extend_schema(responses=ExceptionDetailOutput)
    def get(self, request: Request, exception_id: int) -> Response:
        exception = selectors.exception_get(exception_id)
        if exception is None:
            return refusal(
                errors.NotFound(errors.EXCEPTION_NOT_FOUND.format(exception_id=exception_id))
            )
        return Response(ExceptionDetailOutput(exception).data)


class ExceptionProposeApi(APIView):
    permission_classes = (IsAuthenticated, roles.RolePermission)
    write_role = roles.OPERATIONS

    @extend_schema(request=ProposeInput, responses={201: ProposalOutput})
    def post(self, request: Request, exception_id: int) -> Response:
        data = ProposeInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            proposal = services.exception_propose(
                exception_id=exception_id,
                actor=request.user,
                action=data.validated_data["action"],
                reason=data.validated_data["reason"],
                now=clock.now(),
            )
        except errors.ComplianceError as error:
            return refusal(error)
        return Response(ProposalOutput(proposal).data, status=status.HTTP_201_CREATED)


class ExceptionConfirmApi(APIView):
    permission_classes = (IsAuthenticated, roles.RolePermission)
    write_role = roles.APPROVER

    @extend_schema(request=None, responses=ExceptionDetailOutput)
    def post(self, request: Request, exception_id: int) -> Response:
        try:
            exception = services.exception_confirm(
                exception_id=exception_id, actor=request.user, now=clock.now()
            )
        except errors.ComplianceError as error:
            return refusal(error)
        return Response(ExceptionDetailOutput(exception).data)


class ExceptionWithdrawApi(APIView):
    permission_classes = (IsAuthenticated, roles.RolePermission)
    write_role = roles.OPERATIONS

    @extend_schema(request=None, responses=ProposalOutput)
    def post(self, request: Request, exception_id: int) -> Response:
        try:
            proposal = services.exception_withdraw(
                exception_id=exception_id, actor=request.user, now=clock.now()
            )
        except errors.ComplianceError as error:
            return refusal(error)
        return Response(ProposalOutput(proposal).data)
