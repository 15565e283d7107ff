"""The service catalogue: which endpoints make up a service, as versioned data.

The knowledge (domains, roles, protocols) lives in services.toml; this module only loads and
validates it, so a new service is a data change, not a code change.
"""

from __future__ import annotations

import ipaddress
import tomllib
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

import msgspec

from netvigil.errors import ConfigError, UsageError

DEFAULT_PATH = Path(__file__).with_name("services.toml")
PROTOCOLS = frozenset({"dns", "tcp", "tls", "http", "https", "quic"})


class Endpoint(msgspec.Struct, frozen=True):
    """One host of a service: a domain name (or an IP literal, e.g. a Tor dir authority)."""

    domain: str
    protocols: tuple[str, ...]
    role: str = "web"
    port: int | None = None  # only for IP:port endpoints; names use 80/443

    @property
    def is_ip(self) -> bool:
        try:
            ipaddress.ip_address(self.domain)
        except ValueError:
            return False
        return True

    @property
    def address(self) -> str:
        """host:port for IP endpoints, the domain otherwise."""
        return f"{self.domain}:{self.port}" if self.port else self.domain


class ServiceObject(msgspec.Struct, frozen=True):
    """A real, stable static object the service serves (an https URL on one of its endpoints),
    with its size when known: fetching it is a throughput sample that needs no server of ours."""

    url: str
    bytes: int | None = None

    @property
    def host(self) -> str:
        return (urlsplit(self.url).hostname or "").lower()

    @property
    def path(self) -> str:
        parts = urlsplit(self.url)
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


class Service(msgspec.Struct, frozen=True):
    """A service as measured: every endpoint a user needs (web, API, CDNs, short links), since a
    block of one of them breaks the service."""

    name: str
    display_name: str
    endpoints: tuple[Endpoint, ...]
    suffixes: tuple[str, ...] = ()
    objects: tuple[ServiceObject, ...] = ()

    def objects_by_domain(self) -> dict[str, tuple[tuple[str, int | None], ...]]:
        """host -> ((path, expected bytes), ...) of the catalogue objects on that host."""
        out: dict[str, list[tuple[str, int | None]]] = {}
        for o in self.objects:
            out.setdefault(o.host, []).append((o.path, o.bytes))
        return {k: tuple(v) for k, v in out.items()}

    @property
    def domains(self) -> list[str]:
        return [e.domain for e in self.endpoints]

    @property
    def input_url(self) -> str:
        """The service's first web URL: the `input` of its measurements."""
        for ep in self.endpoints:
            if ep.role == "web" and not ep.is_ip:
                scheme = "https" if "https" in ep.protocols or "tls" in ep.protocols else "http"
                return f"{scheme}://{ep.domain}/"
        first = self.endpoints[0]
        return f"tcp://{first.address}" if first.is_ip else f"https://{first.domain}/"


class _ServiceFile(msgspec.Struct):
    display_name: str
    endpoints: list[Endpoint]
    suffixes: list[str] = []
    objects: list[ServiceObject] = []


class _CatalogueFile(msgspec.Struct):
    version: str
    services: dict[str, _ServiceFile]


class Catalogue(msgspec.Struct, frozen=True):
    """The versioned service catalogue (services.toml): what probes measure and verdicts name."""

    version: str
    services: dict[str, Service]
    path: str = ""

    def service(self, name: str) -> Service:
        try:
            return self.services[name]
        except KeyError:
            known = ", ".join(sorted(self.services))
            raise UsageError(f"unknown service {name!r}", hint=f"known services: {known}") from None

    def service_for_domain(self, domain: str) -> str | None:
        """The service a host name belongs to (exact endpoint first, then suffixes)."""
        domain = domain.strip().lower().rstrip(".")
        if ":" in domain and not _is_ip(domain):  # host:port
            domain = domain.rsplit(":", 1)[0]
        for name, svc in self.services.items():
            if domain in svc.domains:
                return name
        best: tuple[int, str] | None = None
        for name, svc in self.services.items():
            for suffix in svc.suffixes:
                if domain == suffix or domain.endswith("." + suffix):
                    if best is None or len(suffix) > best[0]:
                        best = (len(suffix), name)
        return best[1] if best else None


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _validate(cat: _CatalogueFile, where: str) -> None:
    seen: dict[str, str] = {}
    for name, svc in cat.services.items():
        if not svc.endpoints:
            raise ConfigError(f"service {name!r} has no endpoints", where=where)
        for ep in svc.endpoints:
            bad = set(ep.protocols) - PROTOCOLS
            if bad:
                raise ConfigError(
                    f"service {name!r} endpoint {ep.domain!r}: unknown protocol(s) {sorted(bad)}",
                    where=where, hint=f"use {sorted(PROTOCOLS)}")
            if ep.domain in seen and seen[ep.domain] != name:
                raise ConfigError(f"endpoint {ep.domain!r} is in both {seen[ep.domain]!r} and {name!r}",
                                  where=where)
            seen[ep.domain] = name
        hosts = {e.domain for e in svc.endpoints if "https" in e.protocols or "tls" in e.protocols}
        for obj in svc.objects:
            if urlsplit(obj.url).scheme != "https" or obj.host not in hosts:
                raise ConfigError(f"service {name!r} object {obj.url!r}: not an https URL on one of its TLS endpoints",
                                  where=where, hint=f"use a host of {sorted(hosts)}")
            if obj.bytes is not None and obj.bytes <= 0:
                raise ConfigError(f"service {name!r} object {obj.url!r}: bytes must be > 0", where=where)


@lru_cache(maxsize=8)
def _load(path: str) -> Catalogue:
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read service catalogue: {exc.strerror}", where=path) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", where=path) from None
    try:
        data = msgspec.convert(raw, _CatalogueFile)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"invalid catalogue: {exc}", where=path) from None
    _validate(data, path)
    services = {
        name: Service(name=name, display_name=s.display_name, endpoints=tuple(s.endpoints),
                      suffixes=tuple(s.suffixes), objects=tuple(s.objects))
        for name, s in data.services.items()
    }
    return Catalogue(version=data.version, services=services, path=path)


def load_catalogue(path: str | Path | None = None) -> Catalogue:
    """Load (and cache) the catalogue; the packaged services.toml by default."""
    return _load(str(Path(path) if path else DEFAULT_PATH))
