from django.urls import path

from audit import views

app_name = "audit"

urlpatterns = [
    path("", views.conversation_list, name="conversations"),
    path("conversations/<uuid:public_id>/", views.conversation_detail, name="conversation"),
    path(
        "conversations/<uuid:public_id>/audio/<int:sequence>.wav",
        views.recording,
        name="recording",
    ),
    path("export.csv", views.export, {"fmt": "csv"}, name="export_csv"),
    path("export.jsonl", views.export, {"fmt": "jsonl"}, name="export_jsonl"),
    path("access-log/", views.access_log, name="access_log"),
    path("usage/", views.usage, name="usage"),
]
