"""The strict RFC 3339 grammar of docs/evaluation.md, at millisecond precision.

`YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)`: upper-case `T` and `Z`, seconds 00-59 (no
leap second), a valid calendar date, at least one fraction digit after a dot (digits past the
third are truncated). Every language implements this one grammar so that BEFORE / AFTER agree.
"""

from __future__ import annotations

import re
from functools import lru_cache

_TIMESTAMP = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]+))?(?:(Z)|([+-])([0-9]{2}):([0-9]{2}))"
)


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 in the proleptic Gregorian calendar (H. Hinnant's algorithm)."""
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * ((month + 9) % 12) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


@lru_cache(maxsize=4096)
def parse_millis(text: str) -> int | None:
    """Milliseconds since the Unix epoch, or None when `text` does not follow the grammar."""
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, zulu, sign, offset_hour, offset_minute = match.groups()[6:]
    if not 1 <= month <= 12 or not 1 <= day <= _days_in_month(year, month):
        return None
    if hour > 23 or minute > 59 or second > 59:
        return None
    offset = 0
    if zulu is None:
        oh, om = int(offset_hour), int(offset_minute)
        if oh > 23 or om > 59:
            return None
        offset = (oh * 60 + om) * (1 if sign == "+" else -1)
    millis = int((fraction + "00")[:3]) if fraction else 0
    seconds = _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second
    return (seconds - offset * 60) * 1000 + millis
