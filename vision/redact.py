"""Credential redaction for URLs, alone or inside free text (log lines, exception messages, FFmpeg errors).

`rtsp://admin:p@ss@cam/x?user=admin&password=y` → `rtsp://***@cam/x?user=admin&password=***`. Use `redact_url` on
every string that may hold a URL and reaches a log line, an exception message, CLI output, an HTTP response, an event
or a manifest. A URL carries secrets in three places, and all three are hidden:

- the userinfo: everything up to the LAST `@` of the authority (which ends at the first `/`, `?` or `#`, as FFmpeg
  splits it), so a password containing `@` is hidden whole; a password containing `/` (which FFmpeg cannot use, but
  a config may still hold) is hidden up to the last `@` before the query;
- query and fragment parameters with a password-like name (`is_secret_key`): camera CGI (`?user=admin&password=…`),
  DingTalk's `access_token`, WeCom's `key`; only the value becomes `***`, names and other parameters stay readable;
- tokens in the path of chat-robot and chat webhook URLs (`_PATH_TOKENS`: Feishu/Lark `/hook/<token>`, Slack,
  Discord).

Redacting twice changes nothing, so `PUT /v1/cameras` can recognise a URL sent back exactly as GET showed it.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote

MASK = "***"

#: Query/fragment parameter names whose value is a secret (compared lower-cased, `-` read as `_`).
SECRET_QUERY_KEYS = frozenset(
    {
        "password",
        "pwd",
        "passwd",
        "pass",
        "loginpas",
        "token",
        "key",
        "secret",
        "auth",
        "access_token",
        "sign",
        "signature",
        "sig",
        "apikey",
        "api_key",
    }
)
#: ... and names ending like these (`auth_token`, `app_secret`, `access_key`, `adminPassword`).
_SECRET_SUFFIXES = ("password", "passwd", "pwd", "token", "secret", "_key", "apikey")

_SCHEME = r"(?<![a-zA-Z0-9+.-])[a-zA-Z][a-zA-Z0-9+.-]*://"  # not inside a longer word
_USERINFO = re.compile(
    rf"(?P<scheme>{_SCHEME})(?:"
    r"[^\s/?#]*"  # the authority's userinfo, greedy: up to its last '@'
    r"|[^\s/?#@:\[\]]*:(?!\d*(?:[/?#\s]|$))[^\s?#]{0,256}"  # `user:pa/ss@`: a ':' not followed by a port
    r")@"
)
#: A URL inside free text ends at whitespace, a quote or an angle bracket.
_URL = re.compile(rf"{_SCHEME}[^\s\"'<>`]*")
_PARAM = re.compile(r"(?P<lead>[?&;#](?P<name>[^=&;#?\s]+)=)(?P<value>[^&;#\s]*)")
_PATH_TOKENS = re.compile(
    r"(?P<lead>/hook/"  # Feishu / Lark custom bots: /open-apis/bot/v2/hook/<token>
    r"|hooks\.slack\.com/services/[^/?#\s]+/[^/?#\s]+/"  # Slack incoming webhooks: /services/T…/B…/<token>
    r"|/api/webhooks/\d+/"  # Discord: /api/webhooks/<id>/<token>
    r")[^/?#\s]+"
)


def is_secret_key(name: str) -> bool:
    """A query/fragment parameter name whose value must not be shown."""
    key = unquote(name).lower().replace("-", "_")
    return key in SECRET_QUERY_KEYS or key.endswith(_SECRET_SUFFIXES)


def redact_url(text: str) -> str:
    """`text` with the credentials of every URL in it replaced by `***` (see the module docs); the rest unchanged."""
    if "://" not in text:
        return text
    text = _USERINFO.sub(lambda m: f"{m.group('scheme')}{MASK}@", text)
    return _URL.sub(lambda m: _redact_rest(m.group(0)), text)


def _redact_rest(url: str) -> str:
    """Path tokens and secret parameters of one URL (its userinfo is already hidden)."""
    url = _PATH_TOKENS.sub(lambda m: m.group("lead") + MASK, url)
    return _PARAM.sub(lambda m: m.group("lead") + MASK if is_secret_key(m.group("name")) else m.group(0), url)


class RedactingFormatter(logging.Formatter):
    """A log formatter that passes every formatted record, traceback included, through `redact_url`.

    Call sites redact the URLs they log themselves; this is the net under them for text they do not control
    (exception messages of third-party libraries, tracebacks of unexpected errors).
    """

    def format(self, record: logging.LogRecord) -> str:
        return redact_url(super().format(record))
