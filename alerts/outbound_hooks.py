"""Where channel targets are checked against the outbound address policy: the http(s) URL of a webhook channel
and the host of a PostgreSQL channel, at save time and (for PostgreSQL) at every connection, which goes to the
address that was checked. Until the policy module lands these only resolve; every check passes through here so
that plugging the policy in is one call each."""

from __future__ import annotations

import socket

from core.errors import DomainError


class HostUnresolved(Exception):
    """The host does not resolve now: at send time a network error worth retrying."""


def channel_url_check(url: str, *, field: str) -> None:
    """Save-time check of an http(s) channel URL; raises DomainError naming `field` when refused."""
    del url, field


def channel_host_check(host: str, port: int, *, field: str) -> None:
    """Save-time check of a PostgreSQL channel's host; raises DomainError naming `field` when refused."""
    if not host:
        raise DomainError(f"{field} has no host.", code="invalid_url", field=field)


def channel_host_address(host: str, port: int) -> str:
    """Send-time: resolve `host` once and return the address to connect to (PostgreSQL's `hostaddr`)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise HostUnresolved(f"the host {host} does not resolve") from None
    if not infos:
        raise HostUnresolved(f"the host {host} does not resolve")
    return infos[0][4][0]
