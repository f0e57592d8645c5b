"""Sign-in edges that are Koe's own (allauth serves the rest)."""

from django.conf import settings
from django.contrib import admin
from django.contrib.admin import AdminSite
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse


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
