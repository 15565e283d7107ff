"""`netvigil helper`: run the measurement test helper (docs/helper.md)."""

from __future__ import annotations

from pathlib import Path

import typer

from netvigil.errors import UsageError


def helper_options(listen: str, max_per_client: int, max_transfer_bytes: int,
                   allow_private_targets: bool):  # noqa: ANN201
    """(HelperAddress, Limits) from the flags both `helper` and `serve --helper-listen` take."""
    from netvigil.probe.helper_client import HelperAddress
    from netvigil.helper.limits import Limits
    from netvigil.model.helper_protocol import MAX_TRANSFER_BYTES

    address = HelperAddress.parse(listen)
    if max_per_client < 1:
        raise UsageError(f"--max-per-client must be at least 1, got {max_per_client}")
    if not 0 < max_transfer_bytes <= MAX_TRANSFER_BYTES:
        raise UsageError(f"--max-transfer-bytes must be 1..{MAX_TRANSFER_BYTES}, got {max_transfer_bytes}")
    return address, Limits(max_per_client=max_per_client, max_transfer_bytes=max_transfer_bytes,
                           allow_private_targets=allow_private_targets)


def helper(
    listen: str = typer.Option(..., "--listen", help="HOST:PORT for TLS over TCP and QUIC over UDP, e.g. 0.0.0.0:443."),
    cert: Path = typer.Option(None, "--cert", help="Certificate (PEM); without it a self-signed one is made."),
    key: Path = typer.Option(None, "--key", help="Private key (PEM) of --cert."),
    allow_private_targets: bool = typer.Option(
        False, "--allow-private-targets",
        help="Let control fetches reach private, loopback and link-local addresses (a lab only)."),
    resolver: str = typer.Option(None, "--resolver", help="DNS server IP:PORT for control lookups (default: system)."),
    ca_file: Path = typer.Option(None, "--ca-file", help="Extra trust anchors (PEM) for control TLS, e.g. a lab CA."),
    max_per_client: int = typer.Option(32, "--max-per-client", help="Concurrent connections per client address."),
    max_transfer_bytes: int = typer.Option(8 << 20, "--max-transfer-bytes", help="Largest download or upload."),
) -> None:
    """Run the test helper: SNI-keyed download/upload, echo and the OONI control, any SNI.

    Example: netvigil helper --listen 0.0.0.0:443 --cert helper.pem --key helper.key
    """
    import asyncio

    from netvigil.helper.server import Helper, serve_forever

    address, limits = helper_options(listen, max_per_client, max_transfer_bytes, allow_private_targets)
    dns = None
    if resolver:
        from netvigil.probe.settings import parse_resolver

        dns = parse_resolver(resolver)
    server = Helper(address.host, address.port, limits=limits, cert=cert, key=key, resolver=dns,
                    ca_file=ca_file)
    from netvigil.targets.geo import warm_up

    warm_up()  # the control's AS lookups: loaded now, not on the first request while flows are timed

    async def run() -> None:
        await server.start()
        typer.echo(f"netvigil helper on {server.address} (TLS/TCP and QUIC/UDP, any SNI)", err=True)
        await serve_forever(server, started=True)

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass


def register(app: typer.Typer) -> None:
    app.command("helper")(helper)
