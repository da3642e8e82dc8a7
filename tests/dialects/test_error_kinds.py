"""Every dialect renders every canonical error kind: a client-side kind is never a 5xx, limits are 429.

A kind added to ``ErrorKind`` (the proxy's own budgets, say) must reach every dialect's table; one that falls
through to a default would tell the client its own over-budget request was a server fault.
"""

from __future__ import annotations

import pytest

from llm_proxy.canonical import ErrorKind, ProxyError
from llm_proxy.dialects import get_dialect, names

SERVER_SIDE = {ErrorKind.API_ERROR, ErrorKind.OVERLOADED, ErrorKind.UPSTREAM_UNREACHABLE, ErrorKind.TIMEOUT}
LIMITS = {ErrorKind.RATE_LIMIT, ErrorKind.BUDGET}


@pytest.mark.parametrize("dialect", names())
@pytest.mark.parametrize("kind", list(ErrorKind), ids=str)
def test_every_kind_has_a_status_of_its_side(dialect: str, kind: ErrorKind) -> None:
    # The status the proxy gives such an error (dialects with a table of their own may show another).
    status = 429 if kind in LIMITS else 502 if kind in SERVER_SIDE else 400
    error = ProxyError(status=status, kind=kind, message="m", retry_after="7")
    rendered = get_dialect(dialect).encode_error(error)
    if kind in LIMITS:
        assert rendered.status == 429
        assert ("Retry-After", "7") in rendered.headers or ("retry-after", "7") in rendered.headers
    elif kind in SERVER_SIDE:
        assert rendered.status >= 500 or rendered.status == 408
    else:
        assert 400 <= rendered.status < 500
