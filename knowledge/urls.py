from django.urls import path

from knowledge import views

app_name = "knowledge"

urlpatterns = [
    path("search/", views.search, name="search"),
    path("documents/<uuid:document_id>/passages/<int:order>/", views.passage, name="passage"),
    path("documents/<uuid:document_id>/file/", views.document_file, name="file"),
]
