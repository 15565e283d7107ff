"""The measurement test helper: our own cooperating server on an uncensored network.

`server` runs it (TLS over TCP and QUIC over UDP on one port, any SNI); `client` is what a
probe calls (download, upload, echo, OONI control), returning failures as data. The wire
protocol is in `protocol` and docs/helper.md.
"""
