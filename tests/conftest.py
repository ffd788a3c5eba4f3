"""Shared test setup: tests import their helpers (``programme``, ``contract``) from this folder."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# The EWS test server's fixtures, and its end-of-run count of schema-validated requests.
pytest_plugins = ["tests.servers.ews.fixtures"]
