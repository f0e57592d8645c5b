"""An employee's own conversations: the list and each one as a readable transcript.

Read-only (GET only): nobody edits or deletes a conversation record from the web.
"""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.roles import Role
from accounts.selectors import user_has_role
from voice.selectors import (
    conversation_of_user,
    conversation_timeline,
    conversations_of_user,
    conversations_summarize,
)

PAGE_SIZE = 25


@require_GET
def my_conversations(request: HttpRequest) -> HttpResponse:
    if not user_has_role(user=request.user, role=Role.EMPLOYEE):
        return render(request, "accounts/no_access.html", status=403)
    page = Paginator(conversations_of_user(user=request.user), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    page.object_list = conversations_summarize(
        user=request.user, conversations=list(page.object_list)
    )
    return render(request, "voice/my_conversations.html", {"page": page})


@require_GET
def my_conversation(request: HttpRequest, public_id: str) -> HttpResponse:
    conversation = conversation_of_user(user=request.user, public_id=public_id)
    if conversation is None:
        raise Http404("no such conversation")
    timeline = conversation_timeline(user=request.user, conversation=conversation)
    return render(
        request,
        "voice/conversation.html",
        {"conversation": conversation, "timeline": timeline, "audit": False},
    )
