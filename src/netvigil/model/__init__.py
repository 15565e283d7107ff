"""Typed records that cross stage boundaries: measurements (OONI data format), verdicts,
incidents. Each stage takes one of these and returns another."""
