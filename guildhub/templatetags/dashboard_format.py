"""Filters for the dashboard's figures: durations and rates in words people read at a glance."""

from __future__ import annotations

from datetime import timedelta

from django import template

register = template.Library()


@register.filter
def duration(value: timedelta | None) -> str:
    """12.3 s, 4 min 05 s, 30 min, 2 h 03 min; an em dash when unknown."""
    if value is None:
        return "—"
    seconds = max(0.0, value.total_seconds())
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if minutes else f"{hours} h"


@register.filter
def per_second(value: float | None) -> str:
    """1,234/s; an em dash when unknown."""
    if value is None:
        return "—"
    return f"{value:,.0f}/s" if value >= 10 else f"{value:.1f}/s"


@register.filter
def percent(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.0f}%"


@register.filter
def bar_value(job) -> float | None:
    """A sync run's progress bar, 0 to 100; None for an active run of unknown size (indeterminate)."""
    if job.status == "succeeded":
        return 100
    progress = job.progress
    if progress is None:
        return None if job.is_active else 0
    return round(progress * 100, 1)
