"""This app's routes: ``api_urlpatterns`` go under /api/v1/, ``ui_urlpatterns`` under the UI."""

from django.urls import URLPattern, URLResolver, path

from settlement import api, views

api_urlpatterns: list[URLPattern | URLResolver] = [
    path(
        "settlement/instructions/",
        api.InstructionListApi.as_view(),
        name="settlement-instructions",
    ),
    path(
        "settlement/instructions/<str:instruction_id>/",
        api.InstructionDetailApi.as_view(),
        name="settlement-instruction",
    ),
    path(
        "settlement/netting-ratios/",
        api.NettingRatioApi.as_view(),
        name="settlement-netting-ratios",
    ),
    path("settlement/fails/", api.FailListApi.as_view(), name="settlement-fails"),
    path("settlement/fails/report/", api.FailsReportApi.as_view(), name="settlement-fails-report"),
    path("settlement/payments/", api.PaymentListApi.as_view(), name="settlement-payments"),
    path("settlement/breaks/", api.BreakListApi.as_view(), name="settlement-breaks"),
    path(
        "settlement/breaks/<int:break_id>/", api.BreakDetailApi.as_view(), name="settlement-break"
    ),
    path(
        "settlement/breaks/<int:break_id>/assign/",
        api.BreakAssignApi.as_view(),
        name="settlement-break-assign",
    ),
    path(
        "settlement/breaks/<int:break_id>/comment/",
        api.BreakCommentApi.as_view(),
        name="settlement-break-comment",
    ),
    path(
        "settlement/breaks/<int:break_id>/resolve/",
        api.BreakResolveApi.as_view(),
        name="settlement-break-resolve",
    ),
    path(
        "settlement/breaks/<int:break_id>/accept/",
        api.BreakAcceptApi.as_view(),
        name="settlement-break-accept",
    ),
]
ui_urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.instructions, name="settlement-ui-instructions"),
    path("fails/", views.fails, name="settlement-ui-fails"),
    path("payments/", views.payments, name="settlement-ui-payments"),
    path("breaks/", views.breaks, name="settlement-ui-breaks"),
    path("breaks/<int:break_id>/", views.break_detail, name="settlement-ui-break"),
    path(
        "breaks/<int:break_id>/assign/",
        views.break_assign_view,
        name="settlement-ui-break-assign",
    ),
    path(
        "breaks/<int:break_id>/comment/",
        views.break_comment_view,
        name="settlement-ui-break-comment",
    ),
    path(
        "breaks/<int:break_id>/resolve/",
        views.break_resolve_view,
        name="settlement-ui-break-resolve",
    ),
    path(
        "breaks/<int:break_id>/accept/",
        views.break_accept_view,
        name="settlement-ui-break-accept",
    ),
]
