"""Where a webhook may go: public addresses only, checked after resolution, every time.

A subscription URL is attacker-influenced (anyone with the admin token, or a stolen one), and
the observatory POSTs to it from inside its own network: without a check it reaches
127.0.0.1, the cloud metadata service at 169.254.169.254, or a database on 10.0.0.0/8 (SSRF).
So the host is resolved, and every address it resolves to must be globally routable, with
the numeric spellings a resolver accepts (0x7f000001, 2130706433, 0177.0.0.1, ::ffff:7f00:1)
read as the addresses they are. The check runs when a subscription is added and again on
every delivery, whose connection then goes to the address that was checked (a name that
resolves to a public address at subscription time and to 127.0.0.1 later, DNS rebinding,
is refused on delivery). `allow_private` lifts the address check, for a lab or tests that
deliver to a receiver on loopback; the URL itself is still checked.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import Awaitable, Callable
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from netvigil.errors import UsageError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]

# Beyond what the ipaddress flags cover (Python 3.11 calls 192.0.0.9 and 2002::/16 global).
_REFUSED = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "198.18.0.0/15", "240.0.0.0/4",
    "64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32", "fc00::/7", "fe80::/10", "fec0::/10",
))
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_CREDENTIAL_PARAMS = ("token", "key", "secret", "password", "passwd", "pass", "sig", "signature", "auth",
                      "access_token", "api_key", "apikey", "code")


class TargetRefused(UsageError):
    """A webhook URL or the address it resolves to is not allowed."""


class TargetUnresolved(TargetRefused):
    """The webhook's host did not resolve (now): refused when adding, retried when delivering."""


@dataclass(frozen=True)
class Target:
    """One delivery's destination: the URL as given, and the checked address to connect to."""

    url: str
    scheme: str
    host: str  # the name (or literal) of the URL: Host header and TLS SNI
    port: int
    address: str  # the checked IP address the connection goes to

    def request_url(self) -> str:
        """The URL with the checked address in place of the name (userinfo dropped)."""
        parts = urlsplit(self.url)
        literal = f"[{self.address}]" if ":" in self.address else self.address
        return urlunsplit((self.scheme, f"{literal}:{self.port}", parts.path or "/", parts.query, ""))

    def host_header(self) -> str:
        name = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return name if self.port == default else f"{name}:{self.port}"

    def credentials(self) -> tuple[str, str] | None:
        parts = urlsplit(self.url)
        if parts.username is None and parts.password is None:
            return None
        return unquote(parts.username or ""), unquote(parts.password or "")


def numeric_host(host: str) -> Address | None:
    """The address a numeric host spells, in any form inet_aton or an IPv6 parser accepts.

    inet_aton (and so getaddrinfo) reads 1 to 4 dot-separated parts, each decimal, 0x-hex or
    0-octal, the last one filling the remaining bytes: 0x7f000001, 2130706433, 0177.0.0.1 and
    127.1 are all 127.0.0.1. None when `host` is a name.
    """
    text = host.strip("[]").rstrip(".")
    if ":" in text:
        if "%" in text:
            raise TargetRefused(f"webhook host {host!r} has an IPv6 zone id; give a global address or a name")
        try:
            return ipaddress.IPv6Address(text)
        except ValueError:
            raise TargetRefused(f"webhook host {host!r} is not a valid IPv6 address") from None
    parts = text.split(".")
    if not 1 <= len(parts) <= 4 or not all(_is_number(p) for p in parts):
        return None
    values = [_number(p) for p in parts]
    value, shift = 0, 24
    for v in values[:-1]:
        if v > 255:
            raise TargetRefused(f"webhook host {host!r} is not a valid IPv4 address")
        value |= v << shift
        shift -= 8
    if values[-1] >= 1 << (shift + 8):
        raise TargetRefused(f"webhook host {host!r} is not a valid IPv4 address")
    return ipaddress.IPv4Address(value | values[-1])


def _is_number(part: str) -> bool:
    low = part.lower()
    if low.startswith("0x"):
        return len(low) > 2 and all(c in "0123456789abcdef" for c in low[2:])
    return part.isascii() and part.isdigit()


def _number(part: str) -> int:
    low = part.lower()
    if low.startswith("0x"):
        return int(low[2:], 16)
    if len(part) > 1 and part.startswith("0"):
        if any(c in "89" for c in part):
            raise TargetRefused(f"webhook host part {part!r} is not a valid octal number")
        return int(part, 8)
    return int(part)


def embedded_ipv4(addr: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, compatible, 6to4, NAT64), if any."""
    if isinstance(addr, ipaddress.IPv4Address):
        return None
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr.sixtofour is not None:
        return addr.sixtofour
    if addr in _NAT64 or (int(addr) >> 32 == 0 and int(addr) > 1):
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return None


def refusal(addr: Address) -> str | None:
    """Why a webhook must not go to `addr` (e.g. 'loopback'), or None for a public address."""
    inner = embedded_ipv4(addr)
    if inner is not None:
        why = refusal(inner)
        return f"{why} (inside {addr})" if why else None
    for flag, why in (("is_unspecified", "unspecified"), ("is_loopback", "loopback"),
                      ("is_link_local", "link-local"), ("is_multicast", "multicast"),
                      ("is_private", "private"), ("is_reserved", "reserved")):
        if getattr(addr, flag):
            return why
    if any(addr in net for net in _REFUSED if net.version == addr.version) or not addr.is_global:
        return "not globally routable"
    return None


@dataclass(frozen=True)
class ParsedUrl:
    url: str
    scheme: str
    host: str
    port: int


def parse_url(url: str) -> ParsedUrl:
    """Check the URL's form: http(s), a host, a valid port, no control characters."""
    if len(url) > 2048:
        raise TargetRefused(f"webhook URL is {len(url)} characters long; the limit is 2048")
    if not url.isascii() or any(c.isspace() or ord(c) < 32 or c == "\x7f" for c in url):
        raise TargetRefused(f"webhook URL {mask_url(url)!r} has spaces, control or non-ASCII characters "
                            "(percent-encode them, and punycode a non-ASCII host name)")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetRefused(f"webhook URL {mask_url(url)!r} is malformed: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise TargetRefused(f"webhook URL must start with http:// or https://, got {mask_url(url)!r}")
    if not parts.hostname:
        raise TargetRefused(f"webhook URL {mask_url(url)!r} has no host")
    if port == 0:
        raise TargetRefused(f"webhook URL {mask_url(url)!r} has port 0")
    return ParsedUrl(url, parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80))


def check_addresses(parsed: ParsedUrl, addresses: list[str], allow_private: bool) -> Target:
    """The Target for the first address, once every address of the host has passed."""
    if not addresses:
        raise TargetRefused(f"webhook host {parsed.host!r} resolves to no address")
    checked = []
    for text in addresses:
        addr = ipaddress.ip_address(text.split("%", 1)[0])
        why = None if allow_private else refusal(addr)
        if why:
            raise TargetRefused(
                f"webhook host {parsed.host!r} resolves to {addr}, a {why} address; webhooks go only "
                "to public addresses", hint="an operator can allow private targets with --allow-private-webhooks")
        checked.append(str(addr))
    return Target(parsed.url, parsed.scheme, parsed.host, parsed.port, checked[0])


def _gai(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def resolve_target(url: str, *, allow_private: bool = False) -> Target:
    """Check `url` now (blocking resolution): for adding a subscription."""
    parsed = parse_url(url)
    literal = numeric_host(parsed.host)
    if literal is not None:
        return check_addresses(parsed, [str(literal)], allow_private)
    try:
        addresses = _gai(parsed.host, parsed.port)
    except (OSError, UnicodeError) as exc:
        raise TargetUnresolved(f"cannot resolve webhook host {parsed.host!r}: {exc}",
                               hint="check the name; it must resolve when the subscription is added") from None
    return check_addresses(parsed, addresses, allow_private)


async def system_resolver(host: str, port: int) -> list[str]:
    return await asyncio.get_running_loop().run_in_executor(None, _gai, host, port)


async def resolve_target_async(url: str, *, allow_private: bool = False, resolver: Resolver | None = None,
                               timeout: float = 5.0) -> Target:
    """Check `url` for one delivery; the connection must then go to Target.address."""
    parsed = parse_url(url)
    literal = numeric_host(parsed.host)
    if literal is not None:
        return check_addresses(parsed, [str(literal)], allow_private)
    try:
        addresses = await asyncio.wait_for((resolver or system_resolver)(parsed.host, parsed.port), timeout)
    except (OSError, UnicodeError, asyncio.TimeoutError) as exc:
        raise TargetUnresolved(f"cannot resolve webhook host {parsed.host!r}: {exc or 'timeout'}") from None
    return check_addresses(parsed, addresses, allow_private)


def mask_url(url: str) -> str:
    """`url` fit for a listing or a log: the password and credential-like query values as ***."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, hostport = netloc.rsplit("@", 1)
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:***@{hostport}" if ":" in userinfo else f"***@{hostport}"
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            query = urlencode([(k, "***" if k.lower() in _CREDENTIAL_PARAMS and v else v) for k, v in pairs],
                              safe="*", quote_via=quote)
        return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
    except ValueError:
        return "<malformed URL>"
