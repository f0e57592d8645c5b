"""Upload forms of the knowledge admin. They only check input; services do the writing."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.admin.widgets import FilteredSelectMultiple
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import UploadedFile
from django.db.models import QuerySet
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from accounts.roles import Role
from knowledge.models import Document
from knowledge.parsing import FORMATS, DocumentError, document_format, document_size_check
from knowledge.services import DuplicateDocument, document_upload_check, max_upload_bytes

ACCEPT = ",".join(sorted(FORMATS))


class _ManyFilesInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class ManyFilesField(forms.FileField):
    """A file field that takes several files at once and cleans each of them."""

    widget = _ManyFilesInput

    def clean(self, data: Any, initial: Any = None) -> list[UploadedFile]:
        files = data if isinstance(data, list | tuple) else [data]
        files = [f for f in files if f]
        if not files and self.required:
            raise forms.ValidationError(self.error_messages["required"], code="required")
        cleaned = []
        for upload in files:
            cleaned.append(super().clean(upload, initial))
        return cleaned


def upload_read(upload: UploadedFile) -> bytes:
    """The bytes of an upload, refusing an unsupported type or an oversized file before reading."""
    document_format(upload.name or "")
    document_size_check(size=upload.size or 0, max_bytes=max_upload_bytes())
    return upload.read()


class DocumentUploadForm(forms.Form):
    uploads = ManyFilesField(
        label=_("Files"),
        help_text=format_lazy(
            _("Choose one or more files ({formats}). Each becomes a document."), formats=ACCEPT
        ),
        widget=_ManyFilesInput(attrs={"accept": ACCEPT}),
    )
    allowed_groups = forms.ModelMultipleChoiceField(
        Group.objects.none(),  # set per form: see access_groups()
        required=False,
        label=_("Readable by"),
        help_text=_(
            "Only members of these groups may read the documents. Leave empty for every employee."
        ),
        widget=FilteredSelectMultiple("groups", is_stacked=False),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["allowed_groups"].queryset = access_groups()  # type: ignore[attr-defined]


def access_groups() -> QuerySet[Group]:
    """Groups a document can be shared with: the organisation's groups, not Koe's roles (the
    employee role would mean everyone, the others grant no reading)."""
    return Group.objects.exclude(name__in=[role.value for role in Role]).order_by("name")


class DocumentChangeForm(forms.ModelForm):
    new_version = forms.FileField(
        required=False,
        label=_("Upload a new version"),
        help_text=_(
            "Replaces the file; the current passages stay searchable until the new version is "
            "indexed."
        ),
        widget=forms.ClearableFileInput(attrs={"accept": ACCEPT}),
    )

    class Meta:
        model = Document
        fields = ("title", "allowed_groups")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "allowed_groups" in self.fields:
            self.fields["allowed_groups"].queryset = access_groups()  # type: ignore[attr-defined]

    def clean_new_version(self) -> tuple[str, bytes] | None:
        upload = self.cleaned_data.get("new_version")
        if not upload:
            return None
        try:
            data = upload_read(upload)
            document_upload_check(filename=upload.name, data=data, replacing=self.instance)
        except (DocumentError, DuplicateDocument) as exc:
            raise forms.ValidationError(str(exc)) from exc
        return upload.name, data
