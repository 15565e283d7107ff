"""/docs: the API's Swagger UI served from local assets (the swagger-ui-bundle package), so
the page works offline and sends readers to no CDN. /openapi.json is FastAPI's own."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, Response

router = APIRouter(include_in_schema=False)

ASSETS = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css",
          "favicon-32x32.png": "image/png"}

PAGE = """<!doctype html><html lang=en><head><meta charset=utf-8><title>netvigil API</title>
<meta name=viewport content='width=device-width, initial-scale=1'>
<link rel=stylesheet href='/docs/assets/swagger-ui.css'><link rel=icon href='/docs/assets/favicon-32x32.png'></head>
<body><main id=swagger-ui></main><script src='/docs/assets/swagger-ui-bundle.js'></script>
<script>window.ui = SwaggerUIBundle({url: '/openapi.json', dom_id: '#swagger-ui', deepLinking: true});</script>
</body></html>"""


def assets_dir() -> Path | None:
    try:
        import swagger_ui_bundle
    except ImportError:
        return None
    return Path(swagger_ui_bundle.swagger_ui_path)


@router.api_route("/docs", methods=["GET", "HEAD"])
async def docs() -> Response:
    if assets_dir() is None:  # still useful: the schema itself
        return HTMLResponse("<!doctype html><title>netvigil API</title><p>The interactive docs need the "
                            "swagger-ui-bundle package; the schema is at <a href='/openapi.json'>/openapi.json</a>.")
    return HTMLResponse(PAGE)


@router.api_route("/docs/assets/{name}", methods=["GET", "HEAD"])
async def docs_asset(name: str) -> Response:
    base = assets_dir()
    if base is None or name not in ASSETS:
        return Response(status_code=404)
    return FileResponse(base / name, media_type=ASSETS[name], headers={"cache-control": "public, max-age=86400"})
