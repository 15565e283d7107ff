"""Report: the read side of the observatory.

api.py              JSON/CSV/Parquet API (/api/v1/...); params.py checks its parameters,
                    read_http.py adds CORS, ETag/Cache-Control, HEAD and the chart warm-up
dashboard.py        server-rendered pages (/, /country, /network, /service, /incident,
                    /measurement, /incidents); dashboard_parts.py, pages.py, timeline.py,
                    measurement_view.py, dashboard_assets.py build them
docs.py             /docs (Swagger UI from local assets)
text.py, words.toml dated incident statements in plain words; enrich.py measures what they add
chart.py            incident charts (Altair -> SVG/PNG via vl-convert), cached per data version
alerts.py           signed webhooks on incident start / change / end
metrics.py          Prometheus metrics of the service
serve.py            run_observatory(data_dir, host, port) for the demo and `netvigil serve`
"""
