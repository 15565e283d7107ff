"""netvigil: an observatory of internet censorship and outages.

Data flows one way: targets -> probe -> collector -> store -> analysis -> report,
with lab (emulated ISPs and censors) and ingest (third-party data) beside.
"""

__version__ = "0.1.0"
