"""Async-operation response headers (Azure-AsyncOperation, Location, Retry-After) built from the request origin."""

from __future__ import annotations

from emulator.context import Ctx


def headers(ctx: Ctx, status_path: str, result_path: str, retry_after: int) -> dict[str, str]:
    """Headers for a 201/202: absolute URLs on the emulator's origin carrying the request's api-version."""
    origin = ctx.link_origin()
    q = f"?api-version={ctx.api_version}"
    return {
        "Azure-AsyncOperation": f"{origin}{status_path}{q}",
        "Location": f"{origin}{result_path}{q}",
        "Retry-After": str(retry_after),
    }
