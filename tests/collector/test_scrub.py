"""scrub.py on its own: any spelling of the address goes, nothing else changes (hypothesis,
derandomised, fixed budget)."""

from __future__ import annotations

import ipaddress
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from netvigil.model import scrub

V6 = ipaddress.IPv6Address("2001:db8:0:0:0:0:ab:77")
V4 = ipaddress.IPv4Address("203.0.113.77")
BUDGET = settings(max_examples=200, deadline=None, derandomize=True)


@st.composite
def v6_spellings(draw, ip: ipaddress.IPv6Address = V6) -> str:
    """Any textual form: each group padded or not, any case, the longest zero run compressed or not."""
    groups = [f"{int.from_bytes(ip.packed[i:i + 2], 'big'):x}" for i in range(0, 16, 2)]
    groups = [g.zfill(draw(st.integers(len(g), 4))) for g in groups]
    text = ":".join(groups)
    if draw(st.booleans()):
        text = ip.compressed if draw(st.booleans()) else text.replace(":0:0:0:0:", "::", 1).replace(":0000:0000:0000:0000:", "::", 1)
    return "".join(c.upper() if draw(st.booleans()) else c for c in text)


@BUDGET
@given(spelling=v6_spellings(), wrap=st.sampled_from(["{}", "[{}]:443", "addr={} ok", "{},{}"]))
def test_any_ipv6_spelling_is_scrubbed(spelling, wrap):
    assert ipaddress.IPv6Address(spelling) == V6
    raw = json.dumps({"probe_ip": str(V6), "test_keys": {"x": wrap.format(spelling, spelling)}}).encode()
    out = json.loads(scrub.scrub(raw, scrub.targets(str(V6))))
    assert out["probe_ip"] == "127.0.0.1"
    assert out["test_keys"]["x"] == wrap.format("127.0.0.1", "127.0.0.1")


@BUDGET
@given(escaped=st.lists(st.booleans(), min_size=12, max_size=12), port=st.none() | st.integers(1, 65535))
def test_any_json_escape_of_the_ipv4_address_is_scrubbed(escaped, port):
    text = str(V4)
    spelled = "".join(f"\\u{ord(c):04x}" if e else c for c, e in zip(text, escaped))
    value = spelled + (f":{port}" if port else "")
    raw = b'{"probe_ip":"127.0.0.1","test_keys":{"seen":"' + value.encode() + b'"}}'
    out = json.loads(scrub.scrub(raw, scrub.targets(None, f"{V4}:5000")))  # the client, with its port
    assert out["test_keys"]["seen"] == "127.0.0.1" + (f":{port}" if port else "")


@BUDGET
@given(other=st.ip_addresses().filter(lambda ip: ip not in (V4, V6) and not ip.is_loopback
                                      and getattr(ip, "ipv4_mapped", None) != V4),
       text=st.text(alphabet="0123456789abcdef.:[]- x", max_size=40).filter(
           lambda t: str(V4) not in t and not _is_v6_target_in(t)))
def test_other_addresses_and_text_are_left_alone(other, text):
    raw = json.dumps({"test_keys": {"a": str(other), "b": other.exploded, "t": text}}).encode()
    assert scrub.scrub(raw, scrub.targets(str(V4), str(V6))) == raw


def _is_v6_target_in(text: str) -> bool:
    for token in "".join(c if c in "0123456789abcdef:." else " " for c in text.lower()).split():
        try:
            if ipaddress.IPv6Address(token) == V6:
                return True
        except ValueError:
            continue
    return False


def test_loopback_and_non_addresses_are_not_targets():
    assert scrub.targets("127.0.0.1", "::1", "0.0.0.0", "testclient", "", None, "x" * 100) == ()
    assert scrub.targets("203.0.113.77:443", "[2001:db8::ab:77]:8080", "::ffff:203.0.113.77") == (V4, V6)
