"""`/docs`: Swagger UI from the `swagger-ui-bundle-v2` package, served by the service itself,
so the API docs work on a machine with no way out (FastAPI's own page loads them from a CDN)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import swagger_ui_bundle
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

__all__ = ["ASSETS", "ASSETS_PATH", "DOCS_PATH", "serve_docs"]

DOCS_PATH = "/docs"
ASSETS_PATH = "/docs/assets"
# The files of the package the page loads, and their media types: nothing else is served.
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}


def serve_docs(app: FastAPI) -> None:
    """`GET /docs` (Swagger UI over the app's OpenAPI) and its assets at `/docs/assets/`."""
    openapi_url = app.openapi_url
    assert openapi_url is not None, "the docs page shows the app's OpenAPI"
    folder = Path(str(swagger_ui_bundle.swagger_ui_path))

    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} — API",
            swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_PATH}/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None},  # no call to an online validator
        )

    app.add_api_route(DOCS_PATH, docs, methods=["GET"], include_in_schema=False)
    for name, media_type in ASSETS.items():
        app.add_api_route(
            f"{ASSETS_PATH}/{name}",
            _asset(folder / name, media_type),
            methods=["GET"],
            include_in_schema=False,
        )


def _asset(path: Path, media_type: str) -> Callable[[], Awaitable[FileResponse]]:
    async def asset() -> FileResponse:
        return FileResponse(path, media_type=media_type)

    return asset
