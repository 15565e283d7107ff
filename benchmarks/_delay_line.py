"""A one-way delay for each direction of a link: frames read from one veth (AF_PACKET) are sent
out of the other `delay` seconds later, in order. Run in the middle namespace of
_access_link.py; the rate is htb's, on the egress of the interfaces it writes to.

Why in user space: this kernel has no netem (CONFIG_NET_SCH_NETEM is not set) and no other
delaying qdisc; a constant delay per direction is a FIFO, which a process keeps exactly
enough (~0.1 ms of scheduling) for round-trip times of tens of milliseconds. Frames keep
their checksum-offload state through user space (PACKET_VNET_HDR), so none needs a new
checksum. Bounded: at most MAX_HELD frames in flight per direction (more are dropped, as a
full buffer drops them); it exits when stdin closes.

    python _delay_line.py IFACE_A IFACE_B DELAY_SECONDS
"""

from __future__ import annotations

import collections
import os
import select
import socket
import sys
import time

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_VNET_HDR = 15
MAX_HELD = 4096
MAX_FRAME = 65536 + 64


def _open(iface: str) -> socket.socket:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
    s.bind((iface, 0))
    s.setblocking(False)
    return s


def run(a_name: str, b_name: str, delay: float) -> None:
    a, b = _open(a_name), _open(b_name)
    other = {a.fileno(): b, b.fileno(): a}
    held: dict[int, collections.deque] = {a.fileno(): collections.deque(), b.fileno(): collections.deque()}
    stdin = sys.stdin.fileno()
    while True:
        now = time.monotonic()
        due = min((q[0][0] for q in held.values() if q), default=None)
        timeout = None if due is None else max(0.0, due - now)
        ready, _, _ = select.select([a, b, stdin], [], [], timeout)
        for s in ready:
            if s == stdin:
                if not os.read(stdin, 4096):
                    return
                continue
            q = held[s.fileno()]
            while True:
                try:
                    data, addr = s.recvfrom(MAX_FRAME)
                except BlockingIOError:
                    break
                if addr[2] == socket.PACKET_OUTGOING:  # our own sends out of this interface
                    continue
                if len(q) < MAX_HELD:
                    q.append((time.monotonic() + delay, data))
        now = time.monotonic()
        for fd, q in held.items():
            out = other[fd]
            while q and q[0][0] <= now:
                try:
                    out.send(q.popleft()[1])
                except (BlockingIOError, OSError):  # the egress queue is full: dropped
                    pass


if __name__ == "__main__":
    run(sys.argv[1], sys.argv[2], float(sys.argv[3]))
