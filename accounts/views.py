"""Sign-in edges that are Koe's own (allauth serves the rest)."""

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import AdminSite
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.services import preference_set


@login_not_required
def admin_login(request: HttpRequest) -> HttpResponse:
    """The admin's sign-in: its password form only while local accounts are on."""
    if settings.KOE_LOCAL_ACCOUNTS:
        return AdminSite.login(admin.site, request)
    if request.user.is_authenticated:
        # Signed in but not staff: sending them to sign in again would loop back here.
        return render(request, "accounts/no_admin_access.html", status=403)
    return redirect_to_login(
        request.GET.get("next") or reverse("admin:index"), login_url=reverse("account_login")
    )


@require_POST
def transcription_language_set(request: HttpRequest) -> HttpResponse:
    """The user's transcription language (auto, ja, en), from any page; back where they were."""
    if not request.user.is_authenticated:
        return redirect("account_login")
    try:
        preference_set(
            user=request.user,
            transcription_language=request.POST.get("transcription_language", ""),
        )
    except ValueError:
        messages.error(request, _("Choose one of the languages offered."))
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = reverse("home")
    return HttpResponseRedirect(back)
