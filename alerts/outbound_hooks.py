"""Where channel targets meet the outbound address policy (core/outbound.py): the http(s) URL of a webhook, Slack or
Discord channel and the host of a PostgreSQL channel are checked at save time, and a PostgreSQL connection goes to
the address that was checked at send time (`hostaddr`). HTTP sends go through `core.outbound.outbound_post`, which
checks again and connects to the checked address (alerts/destinations.py)."""

from __future__ import annotations

from core.errors import DomainError
from core.outbound import OutboundRefused, OutboundUnresolved, outbound_check_url, outbound_target


class HostUnresolved(Exception):
    """The host does not resolve now: at send time a network error worth retrying."""


class HostRefused(Exception):
    """The host resolves to an address the policy refuses: at send time a failed delivery, not retried."""


def _refused(field: str, reason: str) -> DomainError:
    return DomainError(f"{field} is refused: {reason}.", code="destination_refused", field=field)


def _host_url(host: str, port: int) -> str:
    # The policy speaks URLs; a PostgreSQL host is checked as the authority of one (IPv6 literals bracketed).
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def channel_url_check(url: str, *, field: str) -> None:
    """Save-time check of an http(s) channel URL; raises DomainError (`destination_refused`) naming `field`."""
    try:
        outbound_check_url(url)
    except OutboundRefused as exc:
        raise _refused(field, exc.reason) from None


def channel_host_check(host: str, port: int, *, field: str) -> None:
    """Save-time check of a PostgreSQL channel's host: resolved, and refused when any address is not public
    (unless UPTAKE_ALERTS_ALLOW_PRIVATE_NETWORKS / UPTAKE_ALERTS_ALLOWED_HOSTS opt in)."""
    if not host:
        raise DomainError(f"{field} has no host.", code="invalid_url", field=field)
    try:
        outbound_check_url(_host_url(host, port))
    except OutboundRefused as exc:
        raise _refused(field, exc.reason) from None


def channel_host_address(host: str, port: int) -> str:
    """Send-time: check `host` again and return the address that was checked (PostgreSQL's `hostaddr`).
    Raises HostUnresolved (retry) or HostRefused (the policy refuses it)."""
    try:
        return outbound_target(_host_url(host, port)).address
    except OutboundUnresolved as exc:
        raise HostUnresolved(exc.reason) from None
    except OutboundRefused as exc:
        raise HostRefused(exc.reason) from None
