"""The probe's last known location: written when self-location worked, used only for what is
still unknown when no helper answered; never the address."""

from __future__ import annotations

import json

import msgspec

from netvigil.probe.location_memory import remember
from netvigil.probe.settings import ProbeSettings


def test_remembered_then_used(tmp_path):
    f = tmp_path / "where.json"
    before = ProbeSettings(location_file=str(f))
    found = msgspec.structs.replace(before, probe_asn="AS65001", probe_cc="RU", probe_network_name="Lab Telecom")
    assert remember(before, found) == found
    assert json.loads(f.read_text()) == {"probe_asn": "AS65001", "probe_cc": "RU", "probe_network_name": "Lab Telecom"}
    again = remember(before, before)  # no helper answered this time
    assert (again.probe_asn, again.probe_cc, again.probe_network_name) == ("AS65001", "RU", "Lab Telecom")
    flagged = msgspec.structs.replace(before, probe_cc="KZ")
    assert remember(flagged, flagged).probe_cc == "KZ"  # a flag still wins


def test_no_file_or_a_broken_one_changes_nothing(tmp_path):
    assert remember(ProbeSettings(), ProbeSettings()) == ProbeSettings()
    f = tmp_path / "where.json"
    f.write_text("{not json")
    s = ProbeSettings(location_file=str(f))
    assert remember(s, s) == s
    f.write_text(json.dumps({"probe_asn": "12389", "probe_cc": "RUS"}))  # wrong shapes: ignored
    assert remember(s, s) == s
