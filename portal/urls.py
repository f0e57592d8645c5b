from django.conf import settings
from django.contrib import admin
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path
from django.views.generic import RedirectView

from portal import views

if not settings.KOE_LOCAL_ACCOUNTS:
    # Without local accounts the admin's own password form must not be a way in: send it to
    # the single sign-in page (admin access is then a matter of being staff).
    admin.site.login = login_not_required(  # type: ignore[method-assign,assignment]
        RedirectView.as_view(pattern_name="account_login", query_string=True)
    )

admin.site.site_header = "Koe administration"
admin.site.site_title = "Koe"

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
]
