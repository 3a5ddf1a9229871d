"""Daily digest subscriptions (admin, as webhooks): create, list, delete (`api/reports/scheduler.py` sends them).

A site-scoped admin key works only with subscriptions of its sites: creating one for another site is 403, and any
other subscription is 404 to it and missing from its list.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, HTTPException, Response, status
from pydantic import AfterValidator, AnyHttpUrl, BaseModel, ConfigDict, Field

from api.deps import AdminKey, CamerasDep, SettingsDep, StoreDep
from api.jsontypes import Responses
from api.reports.daily import site_known, site_zone
from api.reports.i18n import Language
from api.reports.scheduler import due_date
from api.schemas import Problem
from api.store import reports
from api.store.models import ReportSubscription
from api.webhooks.formats import WebhookFormat
from api.webhooks.guard import RefusedUrl, UnresolvedHost, WebhookGuard
from vision.redact import redact_url

router = APIRouter(prefix="/v1/reports/subscriptions", tags=["reports"])
NOT_FOUND: Responses = {404: {"model": Problem}}
_HHMM = re.compile(r"([01]\d|2[0-3]):[0-5]\d")


def _local_time(value: str) -> str:
    if not _HHMM.fullmatch(value):
        raise ValueError(f"local_time must be HH:MM (00:00 to 23:59), got {value[:20]!r}")
    return value


def _zone(value: str | None) -> str | None:
    if value is not None:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value[:64]!r} (e.g. Asia/Shanghai, UTC)") from None
    return value


class SubscriptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site: str = Field(min_length=1, max_length=128)
    url: AnyHttpUrl = Field(description="The chat robot's webhook URL (DingTalk, WeCom, Feishu) or any receiver")
    secret: str = Field(min_length=8, max_length=512, description="HMAC key of X-Safewatch-Signature; never returned")
    format: WebhookFormat = WebhookFormat.dingtalk
    local_time: Annotated[str, AfterValidator(_local_time)] = Field(
        default="08:00", description="HH:MM: the digest of the previous day is sent once a day after this time"
    )
    timezone: Annotated[str | None, AfterValidator(_zone)] = Field(
        default=None, max_length=64, description="IANA zone of local_time; default: the site's (its cameras')"
    )
    language: Language = "zh-CN"


class SubscriptionOut(BaseModel):
    id: str
    site: str
    url: str = Field(description="Credentials and token-like parts redacted")
    format: str
    local_time: str
    timezone: str
    language: str
    last_sent_date: str | None = Field(description="Local date of the last digest sent (it covered the day before)")
    last_error: str | None = Field(description="Error class of the last failed attempt (`http_500`, `timeout`, …)")
    created_at: datetime

    @classmethod
    def of(cls, row: ReportSubscription) -> SubscriptionOut:
        return cls(
            id=row.id,
            site=row.site,
            url=redact_url(row.url),
            format=row.format,
            local_time=row.local_time,
            timezone=row.timezone,
            language=row.language,
            last_sent_date=row.last_sent_date,
            last_error=row.last_error,
            created_at=row.created_at,
        )


def _check_reachable(url: str, settings: SettingsDep) -> None:
    try:
        WebhookGuard(settings.webhook_allow).check(url)
    except RefusedUrl as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    except UnresolvedHost:  # checked again before every send
        pass


@router.post(
    "",
    response_model=SubscriptionOut,
    status_code=status.HTTP_201_CREATED,
    responses={403: {"model": Problem}, 422: {"description": "Invalid body, unknown site or unreachable URL"}},
)
def create(
    body: SubscriptionCreate, key: AdminKey, store: StoreDep, settings: SettingsDep, cameras: CamerasDep
) -> SubscriptionOut:
    """Subscribe a site's daily digest. The first one is sent at the next `local_time`."""
    if not key.sees(body.site):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"key {key.name!r} may not subscribe to reports of site {body.site!r}"
        )
    _check_reachable(str(body.url), settings)
    configs = [c.config for c in cameras.scan()[0]]
    with store.session() as session:
        if not any(c.site == body.site for c in configs) and not site_known(session, body.site):
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"unknown site {body.site!r}")
        zone = body.timezone or site_zone(configs, body.site).name
        row = reports.create_subscription(
            session,
            site=body.site,
            url=str(body.url),
            secret=body.secret,
            fmt=body.format.value,
            local_time=body.local_time,
            timezone=zone,
            language=body.language,
            last_sent_date=due_date(time.time(), body.local_time, zone).isoformat(),
        )
        return SubscriptionOut.of(row)


@router.get("", response_model=list[SubscriptionOut])
def list_(key: AdminKey, store: StoreDep) -> list[SubscriptionOut]:
    with store.read() as session:
        return [SubscriptionOut.of(r) for r in reports.list_subscriptions(session, key.sites)]


@router.delete("/{subscription_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
def delete(subscription_id: str, key: AdminKey, store: StoreDep) -> Response:
    with store.session() as session:
        if not reports.delete_subscription(session, subscription_id, key.sites):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"subscription {subscription_id!r} not found")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
