"""Report: the read side of the observatory.

api.py        JSON/CSV API (/api/v1/...)
dashboard.py  server-rendered live dashboard (/, /country/CC, /incident/ID)
text.py       incident statements generated from Incident records
chart.py      incident charts (Altair -> SVG/PNG via vl-convert)
alerts.py     signed webhooks on incident start / change / end
metrics.py    Prometheus metrics of the service
serve.py      run_observatory(data_dir, host, port) for the demo and `netvigil serve`
"""
