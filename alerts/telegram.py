"""Telegram destination: an alert payload as a Bot API `sendMessage` body (HTML parse mode, escaped, at most
4096 characters with a cut marker, mentions broken unless the channel opts in), the 429 answer's
`parameters.retry_after`, and the pace Telegram allows a chat (alerts/pacing.py keeps to it). The bot token is
part of the request path only: never logged or shown."""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings

TELEGRAM_MAX_TEXT = 4096
# Telegram's limits for one bot: about one message a second in a chat, and 20 a minute in a group or channel
# (their ids are negative, or a public @channelname). The gap keeps a tenth of a second in hand for the jitter
# between a send's slot and its request.
TELEGRAM_CHAT_GAP = timedelta(seconds=1.1)
TELEGRAM_GROUP_PER_MINUTE = 20
TELEGRAM_PRIVATE_PER_MINUTE = 60
CUT_MARKER = "\n… (cut; the whole alert is in Uptake's delivery log)"
# A word joiner after "@" keeps "@name" readable but no longer a mention that notifies.
_WORD_JOINER = "\u2060"
_MENTION = re.compile(r"(?<!\w)@(?=\w)")


def telegram_length(text: str) -> int:
    """Telegram counts message length in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def _cut(text: str, limit: int) -> str:
    if telegram_length(text) <= limit:
        return text
    room = limit - telegram_length(CUT_MARKER)
    kept = text
    while telegram_length(kept) > room:
        kept = kept[: max(0, len(kept) - max(1, telegram_length(kept) - room))]
    return kept + CUT_MARKER


def _unmention(text: str) -> str:
    # Only an "@" that starts a word is a mention: an e-mail address (carol@example.com) is left as it is.
    return _MENTION.sub("@" + _WORD_JOINER, text)


def telegram_send_url(token: str) -> str:
    return f"{settings.UPTAKE_TELEGRAM_API_BASE.rstrip('/')}/bot{token}/sendMessage"


def telegram_body(*, chat_id: str, title: str, lines: list[str], mentions: bool = False) -> dict:
    """The sendMessage body: the title in bold, then the lines; every character of the text escaped for
    Telegram's HTML parse mode, so nothing in an event is read as markup."""
    if not mentions:
        title = _unmention(title)
        lines = [_unmention(line) for line in lines]
    title = _cut(title, 256)
    rest = _cut("\n".join(lines), TELEGRAM_MAX_TEXT - telegram_length(title) - 1)
    text = f"<b>{html.escape(title, quote=False)}</b>\n{html.escape(rest, quote=False)}".rstrip("\n")
    return {
        "chat_id": chat_id,
        "text": text,
        "parse_mode": "HTML",
        "link_preview_options": {"is_disabled": True},
    }


def telegram_retry_after(text: str) -> float | None:
    """Seconds a 429 answer asks to wait (`{"parameters": {"retry_after": 3}}`), or None."""
    try:
        value = json.loads(text).get("parameters", {}).get("retry_after")
    except (ValueError, AttributeError):
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return max(0.0, float(value))
    return None


@dataclass(frozen=True)
class Pace:
    """At most one send every `gap`, and at most `per_window` sends in any `window` (None: no such bound)."""

    gap: timedelta
    per_window: int | None = None
    window: timedelta = timedelta(minutes=1)


def telegram_is_group(chat_id: str) -> bool:
    """Groups, supergroups and channels: a negative id or a public @channelname; private chats are positive."""
    return chat_id.startswith(("-", "@"))


def telegram_pace(chat_id: str) -> Pace:
    if telegram_is_group(chat_id):
        return Pace(gap=TELEGRAM_CHAT_GAP, per_window=TELEGRAM_GROUP_PER_MINUTE)
    return Pace(gap=TELEGRAM_CHAT_GAP)


def telegram_max_per_minute(chat_id: str) -> int:
    """The most a channel's rate budget may allow in this chat: what Telegram accepts there in a minute."""
    return TELEGRAM_GROUP_PER_MINUTE if telegram_is_group(chat_id) else TELEGRAM_PRIVATE_PER_MINUTE
