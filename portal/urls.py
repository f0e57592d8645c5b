from django.contrib import admin
from django.urls import include, path

from accounts.views import admin_login
from portal import views

admin.site.site_header = "Koe administration"
admin.site.site_title = "Koe"
# The admin signs in through Koe's own rules (no password form once local accounts are off).
admin.site.login = admin_login  # type: ignore[method-assign,assignment]

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/", include("allauth.urls")),
    path("knowledge/", include("knowledge.urls")),
    path("conversations/", include("voice.urls")),
    path("minutes/", include("minutes.urls")),
    path("audit/", include("audit.urls")),
    path("admin/", admin.site.urls),
]
