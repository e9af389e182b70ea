"""Operations tests that read the shared database through the ``cfg`` fixture run on both
engines (the rest read Postfix, DNS or a file and need no second run)."""

from __future__ import annotations

import pytest

from tests.conftest import ENGINES


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)
