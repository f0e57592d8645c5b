from django.urls import path

from minutes import views

app_name = "minutes"

urlpatterns = [
    path("", views.minutes_list, name="list"),
    path("<uuid:public_id>/", views.minutes_detail, name="detail"),
    path("<uuid:public_id>/details", views.minutes_details, name="details"),
    path("<uuid:public_id>/summary", views.minutes_summarize, name="summarize"),
    path("<uuid:public_id>/segments/<str:segment_id>", views.minutes_segment, name="segment"),
    path("<uuid:public_id>/export.md", views.minutes_export, {"fmt": "md"}, name="export_md"),
    path("<uuid:public_id>/export.docx", views.minutes_export, {"fmt": "docx"}, name="export_docx"),
]
