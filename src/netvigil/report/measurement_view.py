"""A measurement as a reader sees it (like OONI Explorer's page): the verdict, its rule ids,
and each step (DNS, TCP, TLS, QUIC, HTTP, throughput) with its timing and failure.

Works on the stored measurement dict (OONI data formats df-002/005/006/001); the probe's
own address is never shown (it is scrubbed on intake, and not read here either).
"""

from __future__ import annotations

from html import escape
from typing import Any


def _ms(step: dict) -> str:
    t0, t = step.get("t0"), step.get("t")
    if isinstance(t0, (int, float)) and isinstance(t, (int, float)):
        return f"{(t - t0) * 1000:.0f} ms"
    return ""


def _outcome(failure: Any, ok: str = "ok") -> str:
    if failure:
        return f"<span class=fail-text>failed: {escape(str(failure))}</span>"
    return f"<span class=ok-text>{escape(ok)}</span>"


def _table(caption: str, head: list[str], rows: list[list[str]]) -> str:
    if not rows:
        return ""
    th = "".join(f"<th scope=col>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return (f"<h3>{escape(caption)}</h3><div class=scroll tabindex=0 role=region aria-label='{escape(caption)} steps'><table class=steps data-step='{escape(caption)}'>"
            f"<thead><tr>{th}</tr></thead><tbody>{body}</tbody></table></div>")


def _answers(q: dict) -> str:
    out = []
    for a in q.get("answers") or []:
        out.append(str(a.get("ipv4") or a.get("ipv6") or a.get("hostname") or a.get("answer_type", "")))
    return escape(", ".join(out))


def steps_html(m: dict) -> str:
    tk = m.get("test_keys") if isinstance(m.get("test_keys"), dict) else {}
    parts = [
        _table("DNS", ["name", "type", "resolver", "answers", "outcome", "time"],
               [[escape(str(q.get("hostname", ""))), escape(str(q.get("query_type", ""))),
                 escape(str(q.get("resolver_address", ""))), _answers(q), _outcome(q.get("failure")), _ms(q)]
                for q in tk.get("queries") or [] if isinstance(q, dict)]),
        _table("TCP connect", ["address", "outcome", "time"],
               [[escape(f"{c.get('ip')}:{c.get('port')}"), _outcome((c.get("status") or {}).get("failure"),
                                                                    "connected"), _ms(c)]
                for c in tk.get("tcp_connect") or [] if isinstance(c, dict)]),
        _table("TLS handshake", ["address", "server name (SNI)", "version", "outcome", "time"],
               [[escape(str(h.get("address", ""))), escape(str(h.get("server_name", ""))),
                 escape(str(h.get("tls_version") or "")), _outcome(h.get("failure"), "handshake done"), _ms(h)]
                for h in tk.get("tls_handshakes") or [] if isinstance(h, dict)]),
        _table("QUIC handshake", ["address", "server name (SNI)", "outcome", "time"],
               [[escape(str(h.get("address", ""))), escape(str(h.get("server_name", ""))),
                 _outcome(h.get("failure"), "handshake done"), _ms(h)]
                for h in tk.get("quic_handshakes") or [] if isinstance(h, dict)]),
        _table("HTTP", ["request", "outcome", "body", "time"],
               [[escape(f"{(r.get('request') or {}).get('method', '')} {(r.get('request') or {}).get('url', '')}"),
                 _outcome(r.get("failure"), f"HTTP {(r.get('response') or {}).get('code', '')}"),
                 escape(f"{len(str((r.get('response') or {}).get('body') or ''))} bytes"), _ms(r)]
                for r in tk.get("requests") or [] if isinstance(r, dict)]),
        _table("Throughput", ["URL", "server name (SNI)", "bytes", "rate", "outcome"],
               [[escape(str(s.get("url", ""))), escape(str(s.get("server_name", ""))),
                 escape(str(s.get("bytes", ""))),
                 escape(f"{s['bits_per_second'] / 1000:.0f} kbit/s" if isinstance(s.get("bits_per_second"), (int, float))
                        else ""), _outcome(s.get("failure"), "done")]
                for s in tk.get("throughput") or [] if isinstance(s, dict)]),
    ]
    return "".join(p for p in parts if p) or "<p class=muted>This measurement has no steps netvigil can show.</p>"
