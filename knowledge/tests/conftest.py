import pytest


@pytest.fixture(autouse=True)
def media_in_tmp(settings, tmp_path):
    """Uploaded files of a test go to its own folder, never to the developer's var/media."""
    settings.MEDIA_ROOT = tmp_path / "media"
