"""Signed, expiring links to one site's daily report: `/v1/reports/daily?site=S&date=D&exp=…&sig=…` opens without a
key, for that site and day only (the digest pushes one to a chat robot).

The scheme of the media links (`api/media_links.py`: the same key, the same lifetime and `exp` rounding) under its
own domain, so a media signature never opens a report nor the reverse:
`sig = base64url HMAC-SHA256(key, "safewatch-report-v1|<date>|<exp>|<site>")` (the site last: it is the only part
that may contain `|`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import date
from urllib.parse import urlencode

from api.media_links import LinkRefused, LinkSigner

_DOMAIN = "safewatch-report-v1"
PATH = "/v1/reports/daily"


def report_signature(signer: LinkSigner, site: str, day: date, exp: int) -> str:
    message = f"{_DOMAIN}|{day.isoformat()}|{exp}|{site}".encode()
    mac = hmac.new(signer.key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def report_link(base_url: str, signer: LinkSigner, site: str, day: date, now: float | None = None) -> str:
    """The absolute signed link to the report of `site` on `day`."""
    exp = signer.expiry(time.time() if now is None else now)
    query = urlencode(
        {"site": site, "date": day.isoformat(), "exp": exp, "sig": report_signature(signer, site, day, exp)}
    )
    return f"{base_url}{PATH}?{query}"


def check_report_link(
    signer: LinkSigner, site: str, day: date, exp: int | None, sig: str | None, now: float | None = None
) -> None:
    """Raise `LinkRefused` unless `exp`/`sig` sign this site and day and have not expired."""
    if exp is None or not sig:
        raise LinkRefused("a signed link needs both exp and sig")
    expected = report_signature(signer, site, day, exp).encode()
    if not hmac.compare_digest(expected, sig.encode("utf-8", "replace")):
        raise LinkRefused("invalid link signature")
    if exp < (time.time() if now is None else now):
        raise LinkRefused("this link has expired")
