"""The API's documentation at /docs: Swagger UI from files the service serves itself (the package
fastapi-offline ships them), so it renders offline, under a Content-Security-Policy that allows only
its own script and the hash of the few lines that start it."""

import base64
import hashlib
import re

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC = "static"
INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def mount_static(app: FastAPI) -> None:
    """The page's script and style, and Swagger UI's files, under /static/."""
    files = StaticFiles(packages=[("mnist_pipeline.serving", STATIC), ("fastapi_offline", STATIC)])
    app.mount(f"/{STATIC}", files, name=STATIC)


def docs_page(title: str) -> tuple[bytes, str]:
    """Swagger UI's page (its URLs relative, so it works under a proxy's prefix too) and its policy."""
    page = get_swagger_ui_html(
        openapi_url="openapi.json",
        title=f"{title}: API",
        swagger_js_url=f"{STATIC}/swagger-ui-bundle.js",
        swagger_css_url=f"{STATIC}/swagger-ui.css",
        swagger_favicon_url=f"{STATIC}/favicon.png",
        oauth2_redirect_url=None,
    ).body
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'"
        for script in INLINE_SCRIPT.findall(page.decode())
    )
    policy = (
        f"default-src 'self'; script-src 'self' {hashes}; img-src 'self' data:; object-src 'none'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
    return page, policy


def add_docs(app: FastAPI) -> None:
    """GET /docs (FastAPI's own, fetching its script from a CDN, must be off: `docs_url=None`)."""
    page, policy = docs_page(app.title)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(page, headers={"Content-Security-Policy": policy})
