from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from voice.selectors import ConversationFilter


class ConversationFilterForm(forms.Form):
    """The auditor's filter (GET): every field optional."""

    user = forms.CharField(required=False, max_length=150, label=_("User name"))
    since = forms.DateField(
        required=False, label=_("From"), widget=forms.DateInput({"type": "date"})
    )
    until = forms.DateField(required=False, label=_("To"), widget=forms.DateInput({"type": "date"}))
    text = forms.CharField(required=False, max_length=200, label=_("Words said (any language)"))
    tool = forms.ChoiceField(required=False, label=_("Tool used"))
    document = forms.UUIDField(required=False, label=_("Cited document (id)"))
    provider = forms.ChoiceField(required=False, label=_("Provider"))
    model = forms.ChoiceField(required=False, label=_("Model"))
    ended = forms.ChoiceField(
        required=False,
        label=_("How it went"),
        choices=[
            ("", _("any")),
            ("error", _("ended by an error")),
            ("expiry", _("a model session expired")),
        ],
    )

    def __init__(self, *args: object, choices: dict[str, list[str]], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        for name in ("tool", "provider", "model"):
            field = self.fields[name]
            assert isinstance(field, forms.ChoiceField)
            field.choices = [("", gettext("any")), *((value, value) for value in choices[name])]

    def to_filter(self) -> ConversationFilter:
        data = self.cleaned_data
        return ConversationFilter(
            username=data.get("user") or "",
            since=data.get("since"),
            until=data.get("until"),
            text=(data.get("text") or "").strip(),
            tool=data.get("tool") or "",
            document_id=str(data["document"]) if data.get("document") else "",
            provider=data.get("provider") or "",
            model=data.get("model") or "",
            ended=data.get("ended") or "",
        )


class UsagePeriodForm(forms.Form):
    since = forms.DateField(
        required=False, label=_("From"), widget=forms.DateInput({"type": "date"})
    )
    until = forms.DateField(required=False, label=_("To"), widget=forms.DateInput({"type": "date"}))

    MAX_DAYS = 366

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until:
            if since > until:
                raise forms.ValidationError(gettext("The period ends before it starts."))
            if (until - since).days >= self.MAX_DAYS:
                raise forms.ValidationError(
                    gettext("Show at most %(days)s days at once.") % {"days": self.MAX_DAYS}
                )
        return data
