"""Turns the policies in force at a scenario time into one ISP middlebox's state:
iptables rules (one atomic iptables-restore), the policy file the censor daemon reads
(DNS answers, SNI actions), the htb rate of the whole uplink, and the uplink's link state.

Marks (recipes/2_sni): 2 = RST (REJECT tcp-reset), 3 = drop, 9 = inspected clean,
0x100 + 0x40*n + slot = throttle rate n. Throttling is per flow, as the field saw it (each
connection to a target ran at ~128-150 kbit/s): this kernel has no fq/maxrate, so every rate
gets SLOTS htb classes and the classifier deals new throttled flows round-robin onto them.
CONNMARK carries a flow's mark to both directions; iptables CLASSIFY maps mark -> class.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

import msgspec

from netvigil.lab.plan import IspNet, Plan
from netvigil.lab.scenario import Isp, Policy, policy_domains
from netvigil.lab.topology import ns_exec
from netvigil.model.vocabulary import Technique

LINE_RATE = "10gbit"
BOGON_IP = "127.0.0.1"
FORGED_IP = "10.77.250.1"  # inside the lab prefix, routed nowhere
SNI_MARKS = {Technique.TLS_RESET_AFTER_HELLO: 2, Technique.TLS_TIMEOUT_AFTER_HELLO: 3}
SNI_TECHNIQUES = set(SNI_MARKS) | {Technique.TLS_CLOSED_AFTER_HELLO, Technique.THROTTLED_TARGETED}
SLOTS = 32


def throttle_base(n: int) -> int:
    """First mark (= htb class minor) of throttle rate n."""
    return 0x100 + 0x40 * n


class IspState(msgspec.Struct):
    """What is applied now, so only changes are pushed to the kernel."""

    rules: str = ""
    policy: str = ""
    general_rate: str = LINE_RATE
    uplink_up: bool = True


def throttle_rates(isp: Isp) -> list[int]:
    return sorted({p.rate_bps for p in isp.policies if p.technique == Technique.THROTTLED_TARGETED and p.rate_bps})


def setup_tc(net: IspNet, isp: Isp) -> None:
    """htb on every middlebox port: default class 1:20 (line rate) + one class per throttle rate."""
    devs = ["up0", "d0"] + (["d1"] if net.ns_vpn else [])
    cmds = []
    for dev in devs:
        cmds += [f"qdisc add dev {dev} root handle 1: htb default 20",
                 f"class add dev {dev} parent 1: classid 1:20 htb rate {LINE_RATE} ceil {LINE_RATE} quantum 60000"]
        for n, rate in enumerate(throttle_rates(isp)):
            for minor in range(throttle_base(n), throttle_base(n) + SLOTS):
                cmds += [f"class add dev {dev} parent 1: classid 1:{minor:x} htb rate {rate}bit ceil {rate}bit "
                         f"burst 2k cburst 2k",
                         f"qdisc add dev {dev} parent 1:{minor:x} handle {minor:x}: pfifo limit 50"]
    ns_exec(net.ns_mb, "tc", "-batch", "-", input="\n".join(cmds) + "\n")


def active(isp: Isp, t: datetime) -> list[Policy]:
    return [p for p in isp.policies if p.active(t)]


def render(net: IspNet, isp: Isp, policies: list[Policy], plan: Plan) -> tuple[str, dict]:
    """(iptables-restore text, censor policy) for the policies in force."""
    rates = throttle_rates(isp)
    mangle = ["-A PREROUTING -j CONNMARK --restore-mark"]
    nat: list[str] = []
    filt = ["-A FORWARD -p tcp -m mark --mark 2 -j REJECT --reject-with tcp-reset",
            "-A FORWARD -m mark --mark 3 -j DROP"]
    dns: dict[str, dict] = {}
    sni: dict[str, dict] = {}
    for p in policies:
        tech = p.technique
        domains = policy_domains(p)
        ips = [plan.domain_ip[d] for d in domains if d in plan.domain_ip]
        if tech == Technique.DNS_NXDOMAIN:
            dns.update({d: {"action": "nxdomain"} for d in domains})
        elif tech == Technique.DNS_BOGON:
            dns.update({d: {"action": "bogon", "ip": BOGON_IP} for d in domains})
        elif tech == Technique.DNS_BLOCKPAGE:
            dns.update({d: {"action": "blockpage", "ip": net.blockpage} for d in domains})
        elif tech == Technique.DNS_INJECTED:
            dns.update({d: {"action": "inject", "ip": FORGED_IP, "delay": 0.05} for d in domains})
        elif tech in SNI_MARKS:
            sni.update({d: {"action": tech, "mark": SNI_MARKS[tech]} for d in domains})
        elif tech == Technique.TLS_CLOSED_AFTER_HELLO:
            sni.update({d: {"action": "fin", "mark": 3} for d in domains})
        elif tech == Technique.THROTTLED_TARGETED:
            base = throttle_base(rates.index(p.rate_bps))
            sni.update({d: {"action": f"throttle {p.rate_bps}", "mark": base, "slots": SLOTS} for d in domains})
        elif tech == Technique.TCP_IP_BLOCKED:
            for ip in ips:
                if p.variant == "reject":
                    filt += [f"-A FORWARD -d {ip} -p tcp -j REJECT --reject-with tcp-reset",
                             f"-A FORWARD -d {ip} -j REJECT --reject-with icmp-port-unreachable"]
                else:
                    filt.append(f"-A FORWARD -d {ip} -j DROP")
        elif tech == Technique.HTTP_BLOCKPAGE:
            nat += [f"-A PREROUTING -p tcp -d {ip} --dport 80 -j DNAT --to-destination {net.blockpage}:80"
                    for ip in ips]
        elif tech == Technique.TLS_MITM:
            nat += [f"-A PREROUTING -p tcp -d {ip} --dport 443 -j DNAT --to-destination {net.blockpage}:443"
                    for ip in ips]
        elif tech == Technique.QUIC_BLOCKED:
            filt += [f"-A FORWARD -d {ip} -p udp --dport 443 -m length --length 1001: -j DROP" for ip in ips]
        elif tech == Technique.VPN_BLOCKED:
            filt.append("-A FORWARD -p udp --dport 1194 -j DROP")
        elif tech == Technique.OUTAGE_PARTIAL:
            filt.append(f"-A FORWARD -m statistic --mode random --probability {p.loss:.3f} -j DROP")
    if sni:
        mangle.append("-A PREROUTING -i d+ -p tcp --dport 443 -m mark --mark 0 -m length --length 53: "
                      "-j NFQUEUE --queue-num 0 --queue-bypass")
    mangle.append("-A FORWARD -m mark ! --mark 0 -j CONNMARK --save-mark")
    mangle += [f"-A POSTROUTING -m mark --mark {m} -j CLASSIFY --set-class 1:{m:x}"
               for n in range(len(rates)) for m in range(throttle_base(n), throttle_base(n) + SLOTS)]
    text = ("*mangle\n" + "".join(f":{c} ACCEPT [0:0]\n" for c in ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"))
            + "\n".join(mangle) + "\nCOMMIT\n"
            + "*nat\n" + "".join(f":{c} ACCEPT [0:0]\n" for c in ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"))
            + "".join(x + "\n" for x in nat) + "COMMIT\n"
            + "*filter\n" + "".join(f":{c} ACCEPT [0:0]\n" for c in ("INPUT", "FORWARD", "OUTPUT"))
            + "\n".join(filt) + "\nCOMMIT\n")
    return text, {"dns": dns, "sni": sni}


def apply(net: IspNet, isp: Isp, t: datetime, plan: Plan, state: IspState, policy_file: Path) -> list[str]:
    """Bring one ISP to the policies in force at t; returns the techniques now active."""
    pols = active(isp, t)
    rules, policy = render(net, isp, pols, plan)
    if rules != state.rules:
        ns_exec(net.ns_mb, "iptables-restore", input=rules)
        state.rules = rules
    ptext = json.dumps(policy, sort_keys=True)
    if ptext != state.policy:
        tmp = policy_file.with_suffix(".tmp")
        tmp.write_text(ptext)
        os.replace(tmp, policy_file)
        state.policy = ptext
    general = [p for p in pols if p.technique == Technique.THROTTLED_GENERAL]
    rate = f"{general[0].rate_bps}bit" if general else LINE_RATE
    if rate != state.general_rate:
        devs = ["up0", "d0"] + (["d1"] if net.ns_vpn else [])
        cmds = [f"class change dev {d} parent 1: classid 1:20 htb rate {rate} ceil {rate}"
                + ("" if general else " quantum 60000") for d in devs]
        ns_exec(net.ns_mb, "tc", "-batch", "-", input="\n".join(cmds) + "\n")
        state.general_rate = rate
    up = not any(p.technique == Technique.OUTAGE for p in pols)
    if up != state.uplink_up:
        # the transit side goes down: routes there vanish, the ISP's packets die on a dead link
        if up:
            ns_exec(plan.ns_net, "ip", "link", "set", f"i{net.index}", "up")
            ns_exec(plan.ns_net, "ip", "route", "replace", net.subnet, "via", net.up_mb)
        else:
            ns_exec(plan.ns_net, "ip", "link", "set", f"i{net.index}", "down")
        state.uplink_up = up
    return [p.technique for p in pols]
