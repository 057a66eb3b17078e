"""docs/openapi-lender.yaml is a valid OpenAPI 3 document and describes the routes served."""

from __future__ import annotations

from pathlib import Path

from openapi_spec_validator import validate
from openapi_spec_validator.readers import read_from_filename

SPEC = Path(__file__).resolve().parents[2] / "docs" / "openapi-lender.yaml"


def test_ld_openapi_document_is_valid() -> None:
    # A flow mapping with an unquoted comma ("description: decimal string, never a float")
    # once parsed as an extra key and made the document invalid.
    spec, _ = read_from_filename(str(SPEC))
    validate(spec)


def test_ld_openapi_paths_are_the_served_routes() -> None:
    from connectors.lenders.api import make_app

    spec, _ = read_from_filename(str(SPEC))
    app = make_app(pool=None)  # type: ignore[arg-type]  # routes only; nothing is served
    served = {r.resource.canonical for r in app.router.routes() if r.method == "GET"}
    assert set(spec["paths"]) == served
