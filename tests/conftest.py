import pytest

import dcatkit.source_cache


@pytest.fixture(autouse=True, scope="session")
def _isolated_source_cache(tmp_path_factory):
    """Frozen-source caches of the tests go to a temporary folder, not ~/.cache."""
    dcatkit.source_cache.DEFAULT_DIR = tmp_path_factory.mktemp("source_cache")
    yield
