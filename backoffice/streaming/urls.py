"""Dead-letter pages, mounted under /dead-letters/."""

from django.urls import URLPattern, URLResolver, path

from backoffice.streaming import views

ui_urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.dead_letter_list, name="dead-letters"),
    path("<int:pk>/", views.dead_letter_detail, name="dead-letter-detail"),
    path("<int:pk>/replay/", views.dead_letter_replay, name="dead-letter-replay"),
    path("<int:pk>/discard/", views.dead_letter_discard, name="dead-letter-discard"),
]
