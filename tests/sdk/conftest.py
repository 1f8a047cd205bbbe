"""The API server fixtures, shared with tests/api."""

from tests.api.conftest import keys, server  # noqa: F401
