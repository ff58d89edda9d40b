"""Login throttling (django-axes) on the console's sign-in and the Django admin's: after five wrong
passwords for one username from one address the pair is locked out with a clear 429 page, even for the
right password; other addresses and other users are unaffected; an admin unlocks it in the admin."""

from __future__ import annotations

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.test import Client

from engagement.models import Role
from tests import factories

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-staple"
ATTACKER = "203.0.113.7"


@pytest.fixture(autouse=True)
def _fast_hashing(settings):
    """Every sign-in hashes a password; PBKDF2's deliberate cost is not what is tested here."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def agent(workspace):
    user = factories.member(workspace, Role.AGENT)
    user.set_password(PASSWORD)
    user.save()
    return user


def _sign_in(client, path, username, password, ip=ATTACKER):
    return client.post(path, {"username": username, "password": password}, REMOTE_ADDR=ip)


def _fail_five_times(client, path, username):
    for _ in range(4):
        resp = _sign_in(client, path, username, "wrong")
        assert resp.status_code == 200  # the form again, with its error
    assert _sign_in(client, path, username, "wrong").status_code == 429  # the fifth locks


def test_console_locks_out_after_five_failures_with_a_clear_message(agent):
    client = Client()
    _fail_five_times(client, "/login/", agent.username)
    locked = _sign_in(client, "/login/", agent.username, PASSWORD)
    assert locked.status_code == 429
    page = locked.content.decode()
    assert "Too many failed sign-ins" in page
    assert "15 minutes" in page
    assert "administrator" in page
    assert "_auth_user_id" not in client.session
    # Another address, or another user from the same address, still signs in.
    assert _sign_in(Client(), "/login/", agent.username, PASSWORD, ip="198.51.100.1").status_code == 302
    other = factories.member(agent.memberships.first().workspace, Role.AGENT)
    other.set_password(PASSWORD)
    other.save()
    assert _sign_in(Client(), "/login/", other.username, PASSWORD).status_code == 302


def test_a_successful_sign_in_resets_the_count(agent):
    client = Client()
    for _ in range(4):
        _sign_in(client, "/login/", agent.username, "wrong")
    assert _sign_in(client, "/login/", agent.username, PASSWORD).status_code == 302
    client = Client()
    for _ in range(4):
        _sign_in(client, "/login/", agent.username, "wrong")
    assert _sign_in(client, "/login/", agent.username, PASSWORD).status_code == 302


def test_django_admin_sign_in_is_throttled_too(agent):
    User = get_user_model()
    User.objects.create_superuser("root", "root@example.com", PASSWORD)
    client = Client()
    _fail_five_times(client, "/admin/login/", "root")
    locked = _sign_in(client, "/admin/login/", "root", PASSWORD)
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.content.decode()


def test_an_admin_unlocks_a_locked_user_in_the_admin(agent):
    User = get_user_model()
    User.objects.create_superuser("root", "root@example.com", PASSWORD)
    _fail_five_times(Client(), "/login/", agent.username)
    assert _sign_in(Client(), "/login/", agent.username, PASSWORD).status_code == 429
    attempt = AccessAttempt.objects.get(username=agent.username)

    admin = Client()
    assert _sign_in(admin, "/admin/login/", "root", PASSWORD, ip="192.0.2.10").status_code == 302
    listing = admin.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200
    assert agent.username in listing.content.decode()
    confirm = admin.post(
        "/admin/axes/accessattempt/",
        {"action": "delete_selected", "_selected_action": [attempt.pk], "post": "yes"},
    )
    assert confirm.status_code == 302
    assert not AccessAttempt.objects.filter(username=agent.username).exists()
    assert _sign_in(Client(), "/login/", agent.username, PASSWORD).status_code == 302
