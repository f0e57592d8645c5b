"""Meeting time in templates: `{{ line.start_ms|clock }}` gives 12:05 or 1:02:07."""

from django import template

from minutes.exports import clock as meeting_clock

register = template.Library()


@register.filter
def clock(ms: int) -> str:
    return meeting_clock(int(ms or 0))
