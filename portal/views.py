"""Home page and health probe. Thin: role questions go to accounts.selectors."""

from django.contrib.auth.decorators import login_not_required
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts.models import Preference
from accounts.roles import role_label
from accounts.selectors import transcription_language_of, user_roles
from portal.voice_labels import voice_labels


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    roles = user_roles(user=request.user)
    if not roles:
        return render(request, "accounts/no_access.html", status=403)
    return render(
        request,
        "portal/home.html",
        {
            "roles": [role_label(r) for r in sorted(roles)],
            "voice_labels": voice_labels(),
            "language": transcription_language_of(user=request.user),
            "languages": Preference.TranscriptionLanguage.choices,
        },
    )


@login_not_required
@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness and readiness for load balancers: the process answers and the database too."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return JsonResponse({"status": "unavailable", "database": False}, status=503)
    return JsonResponse({"status": "ok", "database": True})
