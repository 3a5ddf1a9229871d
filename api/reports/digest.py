"""The daily digest: a short markdown summary of a site's day (incidents per rule, the site's backlog, a signed link
to the report) in the body each chat robot expects.

Bodies: DingTalk `{"msgtype": "markdown", "markdown": {"title", "text"}}`, WeCom `{"msgtype": "markdown",
"markdown": {"content"}}`, Feishu an interactive card with one markdown element, and `json` a plain object with the
numbers, the link and the markdown.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date

from pydantic import JsonValue

from api.reports.daily import DailyReport
from api.reports.i18n import Language, rule_name, text

MAX_MISSED = 7  # missed days linked in one digest; older ones are counted


@dataclass(frozen=True)
class Digest:
    report: DailyReport
    backlog: int  # the site's incidents of any day not yet handled
    link: str  # signed link to the day's report
    missed: list[tuple[date, str]]  # earlier days whose digest was never sent: (day, signed report link)
    lang: Language

    @property
    def title(self) -> str:
        return text("digest_title", self.lang, site=self.report.site, date=self.report.day.isoformat())

    def markdown(self) -> str:
        lang, report = self.lang, self.report
        lines = [f"### {self.title}", "", f"**{text('total', lang)}**: {report.total}"]
        lines += [f"- {rule_name(rule, lang)}: {n}" for rule, n in report.per_rule().items()]
        lines += [
            "",
            f"**{text('digest_backlog', lang)}**: {self.backlog}",
            "",
            f"[{text('digest_link', lang)}]({self.link})",
        ]
        if self.missed:
            shown = self.missed[-MAX_MISSED:]
            links = " | ".join(f"[{d.isoformat()}]({url})" for d, url in shown)
            older = len(self.missed) - len(shown)
            more = f" ({text('digest_more', lang, n=older)})" if older else ""
            lines += ["", f"**{text('digest_missed', lang)}**: {links}{more}"]
        return "\n".join(lines)

    def body(self, fmt: str) -> bytes:
        content = self.markdown()
        payload: dict[str, JsonValue]
        if fmt == "dingtalk":
            payload = {"msgtype": "markdown", "markdown": {"title": self.title, "text": content}}
        elif fmt == "wecom":
            payload = {"msgtype": "markdown", "markdown": {"content": content}}
        elif fmt == "feishu":
            card: dict[str, JsonValue] = {
                "header": {"title": {"tag": "plain_text", "content": self.title}},
                "elements": [{"tag": "markdown", "content": content}],
            }
            payload = {"msg_type": "interactive", "card": card}
        else:
            payload = {
                "type": "daily_digest",
                "site": self.report.site,
                "date": self.report.day.isoformat(),
                "total": self.report.total,
                "per_rule": dict(self.report.per_rule()),
                "backlog": self.backlog,
                "report_url": self.link,
                "missed": [{"date": d.isoformat(), "report_url": url} for d, url in self.missed],
                "markdown": content,
            }
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
