"""The OONI web connectivity test helper protocol as typed records (ooni/probe-cli
internal/model/th.go: THRequest, THResponse and their parts).

Field names are OONI's, so OONI's probes and ours read the same JSON; defaults cover the
fields older test helpers did not send (tls_handshake, quic_handshake, ip_info, ...).
"""

from __future__ import annotations

import msgspec

# THIPInfoFlag* bits
RESOLVED_BY_PROBE, RESOLVED_BY_TH, IS_BOGON, VALID_FOR_DOMAIN = 1, 2, 4, 8


class THRequest(msgspec.Struct):
    http_request: str
    http_request_headers: dict[str, list[str]] | None = None  # Go sends null for nil
    tcp_connect: list[str] | None = None
    x_quic_enabled: bool = False


class THTCPConnect(msgspec.Struct):
    status: bool
    failure: str | None = None


class THTLSHandshake(msgspec.Struct):
    server_name: str
    status: bool
    failure: str | None = None


class THHTTPRequest(msgspec.Struct):
    body_length: int = -1
    discovered_h3_endpoint: str = ""
    failure: str | None = None
    title: str = ""
    headers: dict[str, str] = {}
    status_code: int = -1


class THDNS(msgspec.Struct):
    failure: str | None = None
    addrs: list[str] | None = None


class THIPInfo(msgspec.Struct):
    asn: int
    flags: int


class THResponse(msgspec.Struct):
    tcp_connect: dict[str, THTCPConnect] = {}
    tls_handshake: dict[str, THTLSHandshake] = {}
    quic_handshake: dict[str, THTLSHandshake] = {}
    http_request: THHTTPRequest = msgspec.field(default_factory=THHTTPRequest)
    http3_request: THHTTPRequest | None = None
    dns: THDNS = msgspec.field(default_factory=THDNS)
    ip_info: dict[str, THIPInfo] = {}
