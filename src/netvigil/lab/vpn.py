"""OpenVPN for the lab's circumvention path (recipes/1_openvpn): one server in the transit
namespace (outside every censor), one client per ISP with `vpn = true`, in that ISP's VPN
subscriber namespace. Self-signed EC certificates pinned by fingerprint; `disable-dco`.

The tunnel carries the service prefix, the public resolver and the test helper (a VPN user's
every flow goes through it). The subscriber has a kill switch: `unreachable` routes for them
sit under the pushed tunnel routes, so when the VPN is blocked its traffic fails
instead of leaking past the censor on the direct path.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from netvigil.errors import LabError
from netvigil.lab.pki import self_signed
from netvigil.lab.plan import DNS_IP, HELPER_IP, VPN_IP, VPN_POOL, IspNet, Plan

SERVICES_NET = ("10.77.128.0", "255.255.128.0", "10.77.128.0/17")


def write_configs(work: Path) -> tuple[Path, Path]:
    scert, skey, sfp = self_signed(work, "vpn-server")
    ccert, ckey, cfp = self_signed(work, "vpn-client")
    server = work / "vpn-server.conf"
    server.write_text(f"""dev tun
proto udp
local {VPN_IP}
port 1194
topology subnet
server {VPN_POOL[0]} {VPN_POOL[1]}
push "route {SERVICES_NET[0]} {SERVICES_NET[1]}"
push "route {DNS_IP} 255.255.255.255"
push "route {HELPER_IP} 255.255.255.255"
cert {scert}
key {skey}
dh none
peer-fingerprint {cfp}
duplicate-cn
disable-dco
keepalive 1 5
verb 2
""")
    client = work / "vpn-client.conf"
    client.write_text(f"""client
dev tun
proto udp
remote {VPN_IP} 1194
nobind
cert {ccert}
key {ckey}
peer-fingerprint {sfp}
disable-dco
keepalive 1 5
connect-retry 1 2
persist-tun
verb 2
""")
    return server, client


def start_server(plan: Plan, conf: Path, work: Path) -> subprocess.Popen:
    log = open(work / "vpn-server.log", "w")
    return subprocess.Popen(["ip", "netns", "exec", plan.ns_net, "openvpn", "--config", str(conf)],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def start_client(net: IspNet, conf: Path, work: Path) -> subprocess.Popen:
    assert net.ns_vpn
    for dest in (SERVICES_NET[2], f"{DNS_IP}/32", f"{HELPER_IP}/32"):  # kill switch under the tunnel routes
        subprocess.run(["ip", "-n", net.ns_vpn, "route", "add", "unreachable", dest, "metric", "100"],
                       capture_output=True)
    log = open(work / f"vpn-client-{net.index}.log", "w")
    return subprocess.Popen(["ip", "netns", "exec", net.ns_vpn, "openvpn", "--config", str(conf)],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def tunnel_up(net: IspNet) -> bool:
    r = subprocess.run(["ip", "-n", net.ns_vpn, "route", "get", "10.77.128.1"], capture_output=True, text=True)
    return "tun" in r.stdout


def wait_up(nets: list[IspNet], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    pending = list(nets)
    while pending and time.monotonic() < deadline:
        pending = [n for n in pending if not tunnel_up(n)]
        if pending:
            time.sleep(0.05)
    if pending:
        raise LabError(f"OpenVPN tunnel did not come up within {timeout:.0f} s",
                       where=", ".join(n.ns_vpn or "" for n in pending), hint="see vpn-*.log in the lab work dir")
