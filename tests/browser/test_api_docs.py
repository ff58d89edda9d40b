"""The API's documentation pages render in a real browser under the Content-Security-Policy: Swagger UI
and Redoc (which once showed only "Something went wrong": its inline styles were refused)."""

from __future__ import annotations

import pytest

from .conftest import AsgiServer, chromium_browser
from .test_csp import RECORD_VIOLATIONS

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize(
    ("path", "operation"),
    [("/api/redoc/", "[data-section-id^='tag/']"), ("/api/docs/", ".opblock")],
)
def test_api_docs_render_under_the_csp(asgi_server: AsgiServer, path: str, operation: str) -> None:
    from playwright.sync_api import expect

    with chromium_browser() as chromium:
        context = chromium.new_context()
        context.add_init_script(RECORD_VIOLATIONS)
        page = context.new_page()
        page.set_default_timeout(30_000)
        response = page.goto(f"{asgi_server.url}{path}")
        assert response is not None
        assert response.status == 200
        expect(page.locator(operation).first).to_be_visible(
            timeout=90_000
        )  # the schema is built on the first request
        assert "Something went wrong" not in page.content()
        violations = page.evaluate("window.__cspViolations")
        # Redoc's sidebar links to Redocly with a logo from their CDN; the policy keeps third-party
        # images out and Redoc hides the image when it fails. Nothing else may be refused.
        assert [v for v in violations if v != "img-src https://cdn.redoc.ly/redoc/logo-mini.svg"] == []
        context.close()
