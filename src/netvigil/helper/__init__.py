"""The measurement test helper: our own cooperating server on an uncensored network.

`server` runs it (TLS over TCP and QUIC over UDP on one port, any SNI). What a probe calls
(download, upload, echo, OONI control, failures as data) lives with the probe
(probe/helper_client.py and its transports); the wire protocol both sides speak is
model/helper_protocol.py (docs/helper.md). The helper measures its controls with the probe's
own steps, so helper imports probe and never the other way round.
"""
