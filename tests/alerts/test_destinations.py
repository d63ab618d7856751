import json

import pytest

from alerts.destinations import (
    DISCORD_MAX_FIELDS,
    DISCORD_MAX_TOTAL,
    discord_body,
    mask_secret,
    slack_body,
    webhook_request,
    webhook_verify,
)
from tests.conftest import FROZEN_NOW


def _payload(**details) -> dict:
    return {
        "event": "export.pdf",
        "title": "Export used by Initech",
        "text": "Initech used Export (3). @everyone look <!channel>",
        "pipeline": {"id": 7, "name": "Exports"},
        "account": {
            "id": "acc-1",
            "name": "Initech",
            "plan": "free",
            "owner": "carol@example.com",
            "domain": "initech.com",
        },
        "feature": {"id": "export.pdf", "name": "Export"},
        "details": details or {"quantity": 3},
        "occurred_at": FROZEN_NOW.isoformat(),
    }


def _embed_size(embed: dict) -> int:
    return (
        len(embed["title"])
        + len(embed["description"])
        + len(embed["footer"]["text"])
        + sum(len(f["name"]) + len(f["value"]) for f in embed["fields"])
    )


def test_slack_body_has_text_and_blocks_with_enrichment_and_escaped_mentions():
    # when
    body = slack_body(_payload())
    # then
    assert set(body) == {"text", "blocks"}
    assert body["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Export used by Initech", "emoji": False},
    }
    fields = [f["text"] for f in body["blocks"][2]["fields"]]
    assert fields == [
        "*Account*\nInitech (acc-1)",
        "*Plan*\nfree",
        "*Owner*\ncarol@example.com",
        "*Domain*\ninitech.com",
        "*Feature*\nExport (export.pdf)",
        "*Quantity*\n3",
    ]
    assert "&lt;!channel&gt;" in body["text"] and "<!channel>" not in json.dumps(body)


def test_slack_body_keeps_mentions_when_the_destination_opts_in():
    assert "<!channel>" in slack_body(_payload(), mentions=True)["blocks"][1]["text"]["text"]


def test_discord_body_is_one_embed_titled_with_the_event_and_mentions_suppressed():
    # when
    body = discord_body(_payload())
    # then
    embed = body["embeds"][0]
    assert body["allowed_mentions"] == {"parse": []}
    assert embed["title"] == "Export used by Initech"
    assert [(f["name"], f["value"]) for f in embed["fields"]] == [
        ("Account", "Initech (acc-1)"),
        ("Plan", "free"),
        ("Owner", "carol@example.com"),
        ("Domain", "initech.com"),
        ("Feature", "Export (export.pdf)"),
        ("Quantity", "3"),
    ]
    assert embed["timestamp"] == FROZEN_NOW.isoformat()


def test_discord_body_allows_mentions_only_on_opt_in():
    assert discord_body(_payload(), mentions=True)["allowed_mentions"] == {"parse": ["everyone", "roles", "users"]}


def test_discord_body_summarises_more_than_25_fields():
    # given: 5 enrichment fields + 40 details
    payload = _payload(**{f"metric_{i:02d}": i for i in range(40)})
    # when
    embed = discord_body(payload)["embeds"][0]
    # then
    assert len(embed["fields"]) == DISCORD_MAX_FIELDS
    assert embed["fields"][-1] == {
        "name": "More",
        "value": "21 more fields not shown; see the delivery log.",
        "inline": False,
    }
    assert embed["fields"][-2]["name"] == "Metric 18"


def test_discord_body_stays_within_6000_characters():
    # given: long values and a long description
    payload = _payload(**{f"blob_{i}": "x" * 2000 for i in range(10)})
    payload["text"] = "y" * 5000
    # when
    embed = discord_body(payload)["embeds"][0]
    # then
    assert _embed_size(embed) <= DISCORD_MAX_TOTAL
    assert len(embed["description"]) <= 4096
    assert all(len(f["value"]) <= 1024 for f in embed["fields"])
    assert embed["fields"][-1]["name"] == "More"


def test_webhook_signature_verifies_and_a_tampered_body_does_not():
    # given
    body, headers = webhook_request(_payload(), secret="s3cret-s3cret-s3cret", now=FROZEN_NOW)
    ts, sig = headers["X-Uptake-Timestamp"], headers["X-Uptake-Signature"]
    now = FROZEN_NOW.timestamp()
    # then
    assert ts == str(int(now)) and sig.startswith("sha256=") and len(sig) == 7 + 64
    assert webhook_verify(secret="s3cret-s3cret-s3cret", timestamp=ts, body=body, signature=sig, now=now)
    assert not webhook_verify(secret="s3cret-s3cret-s3cret", timestamp=ts, body=body + b" ", signature=sig, now=now)
    assert not webhook_verify(secret="other-secret-value", timestamp=ts, body=body, signature=sig, now=now)
    assert not webhook_verify(secret="s3cret-s3cret-s3cret", timestamp=ts, body=body, signature=sig, now=now + 301)


@pytest.mark.parametrize(("secret", "masked"), [("whsec-0123456789abcd", "••••abcd"), ("short", "••••"), ("", None)])
def test_mask_secret(secret, masked):
    assert mask_secret(secret) == masked
