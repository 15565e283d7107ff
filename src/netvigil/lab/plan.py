"""The lab's address and namespace plan: every address lives in LAB_PREFIX, only inside
namespaces the lab creates, and nothing routes outside LAB_PREFIX (no default routes).

    nv-<id>-net   transit "internet": service hosts (one /32 per catalogue domain), the
                  authoritative DNS server, the OpenVPN exit, the observatory's test helper
                  (`netvigil helper`, outside every censor), the observatory the lab's
                  agents enrol with and submit to (`netvigil serve`); routes to every ISP
    nv-<id>-ctl   control vantage, straight on the transit (outside every censor)
    nv-<id>-m<k>  ISP k's middlebox: router, resolver, censor (iptables, NFQUEUE, tc)
    nv-<id>-c<k>  ISP k's subscriber, where the probe (or the agent) runs
    nv-<id>-v<k>  ISP k's subscriber that uses the VPN (only for ISPs with vpn = true)
"""

from __future__ import annotations

import ipaddress

import msgspec

from netvigil.lab.scenario import Scenario

NS_PREFIX = "nv-"
LAB_PREFIX = ipaddress.ip_network("10.77.0.0/16")
DNS_IP = "10.77.0.53"
VPN_IP = "10.77.0.60"
HELPER_IP, HELPER_PORT = "10.77.0.44", 443  # on 443, as a deployed helper: a censor keys on the SNI, not the port
OBS_IP, OBS_PORT = "10.77.0.45", 80  # `netvigil serve` of a fleet run, on the uncensored transit
VPN_POOL = ("10.77.8.0", "255.255.252.0")
CTL_NET, CTL_IP = "10.77.2.1", "10.77.2.2"
MAX_ISPS = 100


class IspNet(msgspec.Struct, frozen=True):
    index: int
    name: str
    ns_mb: str
    ns_cli: str
    ns_vpn: str | None
    up_net: str  # transit side of the uplink
    up_mb: str  # middlebox side of the uplink
    gw_cli: str  # middlebox address facing the subscriber (also the resolver)
    cli: str
    gw_vpn: str
    vpn: str
    blockpage: str

    @property
    def subnet(self) -> str:
        return f"10.77.{16 + self.index}.0/24"


class Plan(msgspec.Struct, frozen=True):
    rid: str
    ns_net: str
    ns_ctl: str
    isps: tuple[IspNet, ...]
    domain_ip: dict[str, str]

    @property
    def namespaces(self) -> list[str]:
        out = [self.ns_net, self.ns_ctl]
        for i in self.isps:
            out += [i.ns_mb, i.ns_cli] + ([i.ns_vpn] if i.ns_vpn else [])
        return out


def domain_addresses(retired: tuple[str, ...] = ()) -> dict[str, str]:
    """One address per catalogue domain: 10.77.(128+service).(endpoint+1); retired names
    get none (the authoritative server answers NXDOMAIN for a name it does not hold)."""
    from netvigil.targets.catalogue import load_catalogue

    out: dict[str, str] = {}
    for i, svc in enumerate(load_catalogue().services.values()):
        for j, ep in enumerate(e for e in svc.endpoints if not e.is_ip):
            if ep.domain not in retired:
                out.setdefault(ep.domain, f"10.77.{128 + i}.{j + 1}")
    return out


def geo_rows(scenario: Scenario, plan: Plan) -> list[tuple[str, str, str, str]]:
    """The lab's own IP-to-ASN table (prefix, AS, country, name) for its private addresses:
    the probe locates itself from the helper's echo with it, as a probe in the world does with
    a table built from a RIB. A VPN subscriber exits at the VPN pool (the VPN's network)."""
    rows = [(f"{CTL_IP}/32", scenario.control.asn, scenario.control.cc, scenario.control.name)]
    rows += [(i.subnet, isp.asn, isp.cc, isp.name) for i, isp in zip(plan.isps, scenario.isps)]
    pool = ipaddress.ip_network(f"{VPN_POOL[0]}/{VPN_POOL[1]}")
    rows.append((str(pool), "AS64999", scenario.control.cc, "Lab VPN exit"))
    return rows


def make_plan(scenario: Scenario, rid: str) -> Plan:
    if len(scenario.isps) > MAX_ISPS:
        raise ValueError(f"at most {MAX_ISPS} ISPs")
    isps = []
    for k, isp in enumerate(scenario.isps):
        b = 16 + k
        isps.append(IspNet(
            index=k, name=isp.name, ns_mb=f"{NS_PREFIX}{rid}-m{k}", ns_cli=f"{NS_PREFIX}{rid}-c{k}",
            ns_vpn=f"{NS_PREFIX}{rid}-v{k}" if isp.vpn else None,
            up_net=f"10.77.4.{4 * k + 1}" if k < 64 else f"10.77.5.{4 * (k - 64) + 1}",
            up_mb=f"10.77.4.{4 * k + 2}" if k < 64 else f"10.77.5.{4 * (k - 64) + 2}",
            gw_cli=f"10.77.{b}.1", cli=f"10.77.{b}.2", gw_vpn=f"10.77.{b}.5", vpn=f"10.77.{b}.6",
            blockpage=f"10.77.{b}.100"))
    return Plan(rid=rid, ns_net=f"{NS_PREFIX}{rid}-net", ns_ctl=f"{NS_PREFIX}{rid}-ctl",
                isps=tuple(isps), domain_ip=domain_addresses(scenario.retired))
