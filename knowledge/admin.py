"""The knowledge admin: upload, watch indexing, retry, re-index, decide who may read.

Only knowledge admins (and superusers) see it. Every write goes through knowledge.services.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator

from accounts.roles import Role
from accounts.selectors import user_has_role
from knowledge.forms import DocumentChangeForm, DocumentUploadForm, upload_read
from knowledge.models import STALLED_AFTER, Document
from knowledge.parsing import DocumentError
from knowledge.selectors import documents_manageable
from knowledge.services import (
    DuplicateDocument,
    document_create,
    document_delete,
    document_new_version,
    document_reindex,
)

UNFINISHED = (Document.Status.QUEUED, Document.Status.PROCESSING)


def is_knowledge_admin(request: HttpRequest) -> bool:
    user = request.user
    return bool(
        user.is_active
        and user.is_staff
        and (user.is_superuser or user_has_role(user=user, role=Role.KNOWLEDGE_ADMIN))
    )


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    form = DocumentChangeForm
    list_display = ("title", "kind", "indexing", "version", "passages", "readers", "updated_at")
    list_filter = ("status", "kind", "language", "allowed_groups")
    search_fields = ("title", "original_name")
    filter_horizontal = ("allowed_groups",)
    actions = ("retry_failed", "reindex")
    readonly_fields = (
        "indexing",
        "original_name",
        "kind",
        "language",
        "version",
        "passages",
        "size",
        "checksum",
        "uploaded_by",
        "created_at",
        "indexed_at",
    )
    fieldsets = (
        (None, {"fields": ["title", "allowed_groups", "new_version"]}),
        ("Indexing", {"fields": ["indexing", "passages", "indexed_at"]}),
        (
            "File",
            {
                "fields": [
                    "original_name",
                    "kind",
                    "language",
                    "version",
                    "size",
                    "checksum",
                    "uploaded_by",
                    "created_at",
                ]
            },
        ),
    )

    class Media:
        js = ("koe/admin_progress.js",)
        css = {"all": ("koe/admin.css",)}  # noqa: RUF012  (the shape Django's Media reads)

    # Permissions: the role decides, not per-model permission rows that could drift from it.
    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_knowledge_admin(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_knowledge_admin(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return is_knowledge_admin(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_knowledge_admin(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_knowledge_admin(request)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Document]:
        return (
            documents_manageable(user=request.user)
            .select_related("uploaded_by")
            .prefetch_related("allowed_groups")
            .annotate(passage_count=Count("chunks"))
        )

    # -- columns ------------------------------------------------------------------------------

    @admin.display(description="Status", ordering="status")
    def indexing(self, document: Document) -> str:
        state = _state(document)
        live = format_html(
            '<span class="koe-status" data-document="{}" data-status="{}" data-progress-url="{}">',
            document.public_id,
            state["status"],
            reverse("admin:knowledge_document_progress"),
        )
        if document.stalled:
            body = format_html(
                '<strong class="koe-failed">stalled</strong> <span class="koe-error">{}</span>',
                state["error"],
            )
        elif document.status in UNFINISHED:
            body = format_html(
                '{} <progress max="100" value="{}">{}%</progress> <span class="koe-pct">{}%</span>',
                document.get_status_display(),
                document.progress,
                document.progress,
                document.progress,
            )
        elif document.status == Document.Status.FAILED:
            body = format_html(
                '<strong class="koe-failed">failed</strong> <span class="koe-error">{}</span>',
                Truncator(document.error).chars(160),
            )
        else:
            body = format_html("{}", document.get_status_display())
        return format_html("{}{}</span>", live, body)

    @admin.display(description="Passages", ordering="passage_count")
    def passages(self, document: Document) -> int:
        count = getattr(document, "passage_count", None)
        return document.chunks.count() if count is None else count

    @admin.display(description="Readable by")
    def readers(self, document: Document) -> str:
        groups = list(document.allowed_groups.all())
        if not groups:
            return "every employee"
        return format_html_join(", ", "{}", ((g.name,) for g in groups))

    @admin.display(description="Size")
    def size(self, document: Document) -> str:
        return f"{document.size_bytes / 1e6:.2f} MB"

    # -- writes -------------------------------------------------------------------------------

    def save_model(self, request: HttpRequest, obj: Document, form: Any, change: bool) -> None:
        # Only the fields of the form: the worker writes status and progress meanwhile.
        obj.save(update_fields=["title", "updated_at"] if change else None)
        upload = form.cleaned_data.get("new_version")
        if change and upload:
            filename, data = upload
            updated = document_new_version(
                document=obj, uploaded_by=_acting_user(request), filename=filename, data=data
            )
            self.message_user(request, f"Version {updated.version} of {updated.title!r} is queued.")

    def delete_model(self, request: HttpRequest, obj: Document) -> None:
        document_delete(document=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Document]) -> None:
        for document in queryset:
            document_delete(document=document)

    @admin.action(description="Retry the selected failed or stalled documents")
    def retry_failed(self, request: HttpRequest, queryset: QuerySet[Document]) -> None:
        failed = [d for d in queryset if d.status == Document.Status.FAILED or d.stalled]
        for document in failed:
            document_reindex(document=document)
            self.log_change(request, document, "Queued again after a failure.")
        skipped = queryset.count() - len(failed)
        note = f" {skipped} that had neither failed nor stalled were left alone." if skipped else ""
        self.message_user(request, f"{len(failed)} queued again.{note}")

    @admin.action(description="Index the selected documents again")
    def reindex(self, request: HttpRequest, queryset: QuerySet[Document]) -> None:
        count = 0
        for document in queryset:
            document_reindex(document=document)
            self.log_change(request, document, "Queued for indexing again.")
            count += 1
        self.message_user(
            request, f"{count} queued for indexing; their passages stay searchable meanwhile."
        )

    # -- the upload page and the live progress -------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        extra = [
            path(
                "progress/",
                self.admin_site.admin_view(self.progress_view),
                name="knowledge_document_progress",
            ),
        ]
        return extra + super().get_urls()

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        """Adding is uploading: several files at once, each its own document."""
        if not self.has_add_permission(request):
            return super().add_view(request, form_url, extra_context)  # answers 403
        posted = request.method == "POST"
        form = DocumentUploadForm(request.POST, request.FILES) if posted else DocumentUploadForm()
        if posted and form.is_valid():
            self._upload(request, form)
            return HttpResponseRedirect(reverse("admin:knowledge_document_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": "Upload documents",
            "opts": self.opts,
            "form": form,
            "media": self.media + form.media,
            "max_upload_mb": settings.KOE_MAX_UPLOAD_MB,
        }
        return TemplateResponse(request, "admin/knowledge/document/upload.html", context)

    def _upload(self, request: HttpRequest, form: DocumentUploadForm) -> None:
        groups = list(form.cleaned_data["allowed_groups"])
        queued: list[str] = []
        for upload in form.cleaned_data["uploads"]:
            name = upload.name or "file"
            try:
                document = document_create(
                    uploaded_by=_acting_user(request),
                    filename=name,
                    data=upload_read(upload),
                    groups=groups,
                )
            except DuplicateDocument as exc:
                self.message_user(request, f"“{name}” was not added: {exc}", messages.WARNING)
            except DocumentError as exc:
                self.message_user(request, f"“{name}” was refused: {exc}", messages.ERROR)
            else:
                self.log_addition(request, document, "Uploaded.")
                queued.append(document.original_name)
        if queued:
            self.message_user(
                request,
                f"{len(queued)} queued for indexing: {', '.join(queued)}.",
                messages.SUCCESS,
            )

    def progress_view(self, request: HttpRequest) -> JsonResponse:
        """Status of the documents a change list shows, for its progress bars."""
        if not self.has_view_permission(request):
            return JsonResponse({"error": "forbidden"}, status=403)
        ids = request.GET.getlist("id")[:200]
        rows = documents_manageable(user=request.user).filter(public_id__in=_uuids(ids))
        fields = ("public_id", "status", "progress", "error", "updated_at")
        return JsonResponse({str(d.public_id): _state(d) for d in rows.only(*fields)})


def _state(document: Document) -> dict[str, Any]:
    """A document's indexing state as the change list (and its live script) shows it."""
    if document.stalled:
        minutes = int(STALLED_AFTER.total_seconds() // 60)
        return {
            "status": "stalled",
            "label": "stalled",
            "progress": document.progress,
            "error": f"No progress for {minutes} minutes: its worker stopped. Use “Retry”.",
        }
    return {
        "status": document.status,
        "label": document.get_status_display(),
        "progress": document.progress,
        "error": Truncator(document.error).chars(160),
    }


def _acting_user(request: HttpRequest) -> User:
    # The admin site only lets signed-in staff through, so this is a real user.
    assert isinstance(request.user, User)
    return request.user


def _uuids(values: list[str]) -> list[str]:
    valid = []
    for value in values:
        try:
            valid.append(str(uuid.UUID(value)))
        except ValueError:
            continue
    return valid
