"""Packet-level helpers for the censor middlebox: ClientHello SNI parsing and forged TCP segments.

No scapy: parsing a ClientHello and building a FIN or RST segment is a few lines of struct,
and a censor process must start fast (one per ISP in the lab).
"""

from __future__ import annotations

import socket
import struct


def parse_sni(data: bytes) -> tuple[bool, str | None]:
    """(complete, sni) for a byte stream that should start with a TLS ClientHello record."""
    if len(data) < 5:
        return False, None
    if data[0] != 0x16:
        return True, None
    rec_len = int.from_bytes(data[3:5], "big")
    if len(data) < 5 + rec_len:
        return False, None
    p = data[5:5 + rec_len]
    try:
        if p[0] != 0x01:
            return True, None
        i = 4 + 2 + 32
        i += 1 + p[i]
        i += 2 + int.from_bytes(p[i:i + 2], "big")
        i += 1 + p[i]
        end = i + 2 + int.from_bytes(p[i:i + 2], "big")
        i += 2
        while i + 4 <= end:
            etype = int.from_bytes(p[i:i + 2], "big")
            elen = int.from_bytes(p[i + 2:i + 4], "big")
            if etype == 0:
                nlen = int.from_bytes(p[i + 7:i + 9], "big")
                return True, p[i + 9:i + 9 + nlen].decode("ascii", "replace").lower()
            i += 4 + elen
    except IndexError:
        return True, None
    return True, None


class TcpPacket:
    """The fields of an IPv4/TCP packet the censor needs."""

    __slots__ = ("src", "dst", "sport", "dport", "seq", "ack", "payload")

    def __init__(self, raw: bytes):
        ihl = (raw[0] & 0x0F) * 4
        self.src = socket.inet_ntoa(raw[12:16])
        self.dst = socket.inet_ntoa(raw[16:20])
        self.sport, self.dport, self.seq, self.ack = struct.unpack("!HHII", raw[ihl:ihl + 12])
        doff = (raw[ihl + 12] >> 4) * 4
        total = struct.unpack("!H", raw[2:4])[0]
        self.payload = raw[ihl + doff:total]

    @property
    def flow(self) -> tuple[str, int, str, int]:
        return (self.src, self.sport, self.dst, self.dport)


FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def build_tcp(src: str, dst: str, sport: int, dport: int, seq: int, ack: int, flags: int) -> bytes:
    """An IPv4 packet carrying an empty TCP segment with the given flags."""
    s, d = socket.inet_aton(src), socket.inet_aton(dst)
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags, 65535, 0, 0)
    pseudo = s + d + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", _checksum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, socket.IPPROTO_TCP, 0, s, d)
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    return ip + tcp


class RawSender:
    """Sends forged IPv4 packets from inside the censor's namespace."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)

    def send(self, packet: bytes) -> None:
        dst = socket.inet_ntoa(packet[16:20])
        self.sock.sendto(packet, (dst, 0))

    def close_both_ends(self, hello: TcpPacket) -> None:
        """FIN+ACK to the client as if from the server; RST to the server as if from the client."""
        n = len(hello.payload)
        self.send(build_tcp(hello.dst, hello.src, hello.dport, hello.sport, hello.ack, hello.seq + n, FIN | ACK))
        self.send(build_tcp(hello.src, hello.dst, hello.sport, hello.dport, hello.seq, 0, RST))
