"""Where alert destinations may connect (the address policy against SSRF), and the one HTTP POST that goes
there.

`outbound_target(url)` parses the URL, refuses schemes other than http(s) and URL credentials, resolves the host
once and refuses it when any of its addresses is not public: loopback, private (RFC 1918), link-local,
unique-local, CGNAT, multicast, unspecified, reserved, cloud metadata, and IPv6 forms that embed one of those
(IPv4-mapped, 6to4, NAT64). `outbound_post` connects to the address that was checked (the Host header and TLS
SNI/certificate name stay the URL's host), so DNS cannot rebind between check and connect, and never follows
redirects. `UPTAKE_ALERTS_ALLOW_PRIVATE_NETWORKS` lifts the address checks (self-hosted receivers), and
`UPTAKE_ALERTS_ALLOWED_HOSTS` lifts them for the names listed (`.example.internal` also matches subdomains).
Scheme and credential checks always apply. The check runs at save time and again before every send.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import certifi
import urllib3
from django.conf import settings

_SCHEMES = {"http": 80, "https": 443}
# Instance metadata services at public-looking or shared addresses (the link-local ones are refused anyway).
_METADATA = {
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "192.0.0.192")
}
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")


class OutboundRefused(Exception):
    """The destination URL may not be connected to; `reason` says why in words a user can act on."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class OutboundUnresolved(OutboundRefused):
    """The host does not resolve (now): at send time a network error worth retrying, not a policy refusal."""


@dataclass(frozen=True)
class OutboundTarget:
    scheme: str
    host: str  # the URL's host name (or literal address), lower-cased, without brackets
    port: int
    path: str  # path and query, as sent in the request line
    address: str  # the checked address to connect to
    host_header: str


def address_refusal(address: str) -> str | None:
    """Why a connection to `address` is refused ("loopback", "private", ...), or None for a public address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip in _METADATA:
        return "a cloud metadata address"
    if ip.version == 6:
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            reason = address_refusal(str(embedded))
            return f"an IPv6 form of {reason}" if reason else None
    checks = [
        (ip.is_unspecified, "the unspecified address"),
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip.version == 6 and ip in _UNIQUE_LOCAL, "a unique-local address"),
        (ip.version == 4 and ip in _CGNAT, "a carrier-grade NAT address"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_reserved, "a reserved address"),
        (ip.is_private, "a private address"),
        (not ip.is_global, "not a public address"),
    ]
    return next((reason for hit, reason in checks if hit), None)


def _host_allowed(host: str) -> bool:
    for allowed in settings.UPTAKE_ALERTS_ALLOWED_HOSTS:
        allowed = allowed.strip().lower().rstrip(".")
        if allowed and (host == allowed or (allowed.startswith(".") and host.endswith(allowed))):
            return True
    return False


def _split(url: str) -> tuple[str, str, int, str, str]:
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise OutboundRefused("the URL is not valid") from None
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise OutboundRefused(f"only http and https URLs are allowed, not {scheme or 'a URL without scheme'}")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise OutboundRefused("the URL must not contain credentials (user:password@)")
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        raise OutboundRefused("the URL has no host")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host_header = parts.netloc.lower()
    return scheme, host, port or _SCHEMES[scheme], path, host_header


def _resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise OutboundUnresolved(f"the host {host} does not resolve") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise OutboundUnresolved(f"the host {host} does not resolve")
    return addresses


def outbound_check_url(url: str) -> None:
    """The save-time check: raise OutboundRefused when `url` may not be a destination. With the address checks
    lifted (setting or allow-list) nothing is resolved, so a receiver that is not up yet can be saved."""
    scheme, host, port, _, _ = _split(url)
    if settings.UPTAKE_ALERTS_ALLOW_PRIVATE_NETWORKS or _host_allowed(host):
        return
    outbound_target(url)


def outbound_target(url: str) -> OutboundTarget:
    """Check `url` and resolve its host once: the target to connect to, or OutboundRefused."""
    scheme, host, port, path, host_header = _split(url)
    addresses = _resolve(host, port)
    if not (settings.UPTAKE_ALERTS_ALLOW_PRIVATE_NETWORKS or _host_allowed(host)):
        for address in addresses:
            reason = address_refusal(address)
            if reason:
                shown = host if host == address else f"{host} ({address})"
                raise OutboundRefused(
                    f"{shown} is {reason}; alert destinations must be public internet addresses "
                    "(UPTAKE_ALERTS_ALLOW_PRIVATE_NETWORKS or UPTAKE_ALERTS_ALLOWED_HOSTS opt in to internal ones)"
                )
    return OutboundTarget(scheme=scheme, host=host, port=port, path=path, address=addresses[0], host_header=host_header)


@dataclass(frozen=True)
class OutboundResponse:
    status: int
    headers: Mapping[str, str]  # case-insensitive
    text: str  # the first bytes of the body, decoded leniently


def outbound_post(
    target: OutboundTarget, *, body: bytes, headers: dict[str, str], timeout: float, read_limit: int = 1024
) -> OutboundResponse:
    """POST to the checked address of `target` (no redirects, no retries). Raises urllib3's exceptions."""
    pool_kwargs = {"timeout": urllib3.Timeout(connect=timeout, read=timeout), "retries": False, "maxsize": 1}
    if target.scheme == "https":
        is_literal = target.host == target.address
        pool = urllib3.HTTPSConnectionPool(
            target.address,
            target.port,
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
            server_hostname=None if is_literal else target.host,
            assert_hostname=None if is_literal else target.host,
            **pool_kwargs,
        )
    else:
        pool = urllib3.HTTPConnectionPool(target.address, target.port, **pool_kwargs)
    try:
        response = pool.urlopen(
            "POST",
            target.path,
            body=body,
            headers={**headers, "Host": target.host_header},
            redirect=False,
            retries=False,
            preload_content=False,
            assert_same_host=False,
        )
        try:
            data = response.read(read_limit, decode_content=True) or b""
        finally:
            response.release_conn()
        return OutboundResponse(status=response.status, headers=response.headers, text=data.decode("utf-8", "replace"))
    finally:
        pool.close()
