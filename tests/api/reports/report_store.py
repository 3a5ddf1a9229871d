"""The report tests' world: the vtest replay's incidents in a real store (tests/api/datasets/field_store.py: the whole
pipeline with the real detector, evidence on disk, some incidents handled), a camera config that puts the first site
in Asia/Shanghai (the second site has no camera config: UTC), and the expected numbers of a site's day."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

from api.settings import Settings
from tests.api.conftest import make_settings
from tests.api.datasets.field_store import SECOND_SITE, FieldIncident, FieldStore
from tests.pipelines.e2e import harness

SITE_ZONE = "Asia/Shanghai"
SCHEDULE = {"timezone": SITE_ZONE, "windows": [{"start": "00:00", "end": "24:00"}]}


def first_site(field: FieldStore) -> str:
    return next(i.site for i in field.incidents.values() if i.site != SECOND_SITE)


def report_settings(field: FieldStore, workdir: Path) -> Settings:
    """Settings on the field store and its media, with one camera config of the first site (zone: Asia/Shanghai)."""
    config_dir = workdir / "cameras"
    config_dir.mkdir(parents=True, exist_ok=True)
    camera = harness.merged_camera(harness.VTEST_CAMERAS)
    assert camera.site == first_site(field)
    harness.write_camera(camera, config_dir / f"{camera.id}.yaml", name="东门 East gate", schedule=SCHEDULE)
    return make_settings(
        workdir, field.url, config_dir=config_dir, media_root=field.media_root, webhook_dispatcher=False
    )


@dataclass(frozen=True)
class Day:
    site: str
    day: date
    zone: str
    incidents: list[FieldIncident]  # of the site, started on the day

    @property
    def rules(self) -> Counter[str]:
        return Counter(i.rule for i in self.incidents)

    @property
    def handling(self) -> Counter[str]:
        return Counter(i.handling for i in self.incidents)

    @property
    def hours(self) -> Counter[int]:
        return Counter(i.started_at.astimezone(ZoneInfo(self.zone)).hour for i in self.incidents)


def site_day(field: FieldStore, site: str, zone: str) -> Day:
    """The local day of the site's first incident, with every incident of the site that started on it."""
    tz = ZoneInfo(zone)
    mine = sorted((i for i in field.incidents.values() if i.site == site), key=lambda i: i.started_at)
    day = mine[0].started_at.astimezone(tz).date()
    return Day(site, day, zone, [i for i in mine if i.started_at.astimezone(tz).date() == day])
