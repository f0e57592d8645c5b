from __future__ import annotations

from typing import Any

from django import forms

from voice.selectors import ConversationFilter


class ConversationFilterForm(forms.Form):
    """The auditor's filter (GET): every field optional."""

    user = forms.CharField(required=False, max_length=150, label="User name")
    since = forms.DateField(required=False, label="From", widget=forms.DateInput({"type": "date"}))
    until = forms.DateField(required=False, label="To", widget=forms.DateInput({"type": "date"}))
    text = forms.CharField(required=False, max_length=200, label="Words said (any language)")
    tool = forms.ChoiceField(required=False, label="Tool used")
    document = forms.UUIDField(required=False, label="Cited document (id)")
    provider = forms.ChoiceField(required=False, label="Provider")
    model = forms.ChoiceField(required=False, label="Model")
    ended = forms.ChoiceField(
        required=False,
        label="How it went",
        choices=[
            ("", "any"),
            ("error", "ended by an error"),
            ("expiry", "a model session expired"),
        ],
    )

    def __init__(self, *args: object, choices: dict[str, list[str]], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        for name in ("tool", "provider", "model"):
            field = self.fields[name]
            assert isinstance(field, forms.ChoiceField)
            field.choices = [("", "any"), *((value, value) for value in choices[name])]

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
    since = forms.DateField(required=False, label="From", widget=forms.DateInput({"type": "date"}))
    until = forms.DateField(required=False, label="To", widget=forms.DateInput({"type": "date"}))

    MAX_DAYS = 366

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until:
            if since > until:
                raise forms.ValidationError("The period ends before it starts.")
            if (until - since).days >= self.MAX_DAYS:
                raise forms.ValidationError(f"Show at most {self.MAX_DAYS} days at once.")
        return data
