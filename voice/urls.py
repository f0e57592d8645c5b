from django.urls import path

from voice import views

app_name = "voice"

urlpatterns = [
    path("", views.my_conversations, name="my_conversations"),
    path("<uuid:public_id>/", views.my_conversation, name="my_conversation"),
]
