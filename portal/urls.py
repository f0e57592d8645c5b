from django.contrib import admin
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path
from django.views.i18n import set_language

from accounts.views import admin_login, transcription_language_set
from portal import views

admin.site.site_header = "Koe administration"
admin.site.site_title = "Koe"
# The admin signs in through Koe's own rules (no password form once local accounts are off).
admin.site.login = admin_login  # type: ignore[method-assign,assignment]

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    # The language switch in the top bar (POST, back to the same page), on the sign-in page too.
    path("i18n/setlang/", login_not_required(set_language), name="set_language"),
    # The language each person speaks to Koe (transcription), from the voice or minutes page.
    path("preferences/language", transcription_language_set, name="language_spoken"),
    path("accounts/", include("allauth.urls")),
    path("knowledge/", include("knowledge.urls")),
    path("conversations/", include("voice.urls")),
    path("minutes/", include("minutes.urls")),
    path("audit/", include("audit.urls")),
    path("admin/", admin.site.urls),
]
