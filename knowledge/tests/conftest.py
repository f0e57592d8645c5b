import pytest


@pytest.fixture(autouse=True)
def media_in_tmp(settings, tmp_path):
    """Uploaded files of a test go to its own folder, never to the developer's var/media."""
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Call a service as if its transaction committed: the on-commit ingestion task (immediate
    backend in tests) runs, then the document is read back."""

    def call(service, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            document = service(**kwargs)
        document.refresh_from_db()
        return document

    return call


@pytest.fixture
def make_user(db):
    """A user with Koe roles (through the real role service) and extra groups."""
    from django.contrib.auth import get_user_model

    from accounts.services import user_roles_set

    def make(username, *roles, groups=()):
        user = get_user_model().objects.create_user(username)
        user_roles_set(user=user, roles=roles)
        user.groups.add(*groups)
        return user

    return make
