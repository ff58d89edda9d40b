"""Production mode refuses insecure settings; development runs on safe defaults."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHECK = "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)"


def _run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG", "ALLOWED_HOSTS"}}
    return subprocess.run(
        [sys.executable, "-c", CHECK],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_refuses_insecure_defaults():
    result = _run({"ENGAGEMENT_ENV": "production", "PUBLIC_BASE_URL": "http://x"})
    assert result.returncode != 0
    for problem in ("SECRET_KEY", "ALLOWED_HOSTS", "PUBLIC_BASE_URL"):
        assert problem in result.stderr


def test_production_starts_with_secure_settings():
    result = _run(
        {
            "ENGAGEMENT_ENV": "production",
            "SECRET_KEY": "k" * 50,
            "ALLOWED_HOSTS": "engage.example.com",
            "PUBLIC_BASE_URL": "https://engage.example.com",
            "DATABASE_URL": os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1/x"),
            "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
            "CREDENTIALS_KEYS": "x5Ql3oH0bLQbvx1d9qZVJc7m2a4QW8zQeY6u1pT0rKs=",
        }
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_development_defaults_run():
    result = _run({"ENGAGEMENT_ENV": "development"})
    assert result.returncode == 0, result.stderr


VAR_PATHS = """
import json, sys
import django
django.setup()
from django.conf import settings
sys.path.insert(0, "tools")
import devenv, frontend
print(json.dumps({
    "var": str(settings.VAR_DIR),
    "static_root": str(settings.STATIC_ROOT),
    "frontend": [str(d) for d in settings.STATICFILES_DIRS],
    "media": str(settings.MEDIA_ROOT),
    "devenv": str(devenv.VAR),
    "postgres": str(devenv.PG_DIR),
    "redis": str(devenv.REDIS_DIR),
    "npm_copy": str(frontend.OUT),
}))
"""


def _var_paths(var_dir: str) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k not in {"MEDIA_ROOT", "ENGAGEMENT_VAR_DIR"}}
    result = subprocess.run(
        [sys.executable, "-c", VAR_PATHS],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "config.settings", "ENGAGEMENT_VAR_DIR": var_dir},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    paths: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return paths


def test_engagement_var_dir_moves_every_local_path(tmp_path):
    """Data, npm files, static files and media all follow ENGAGEMENT_VAR_DIR (a newcomer found only the
    databases moved), and settings and the tools agree on it."""
    var = tmp_path / "elsewhere"
    paths = _var_paths(str(var))
    assert paths == {
        "var": str(var),
        "static_root": str(var / "staticfiles"),
        "frontend": [str(var / "frontend")],
        "media": str(var / "media"),
        "devenv": str(var),
        "postgres": str(var / "postgres"),
        "redis": str(var / "redis"),
        "npm_copy": str(var / "frontend"),
    }
    assert (var / "staticfiles").is_dir()
    assert (var / "frontend").is_dir()
    assert not (ROOT / "elsewhere").exists()


def test_a_relative_engagement_var_dir_is_taken_from_the_repository_root():
    paths = _var_paths("var")
    assert paths["var"] == paths["devenv"] == str(ROOT / "var")
    assert paths["npm_copy"] == str(ROOT / "var" / "frontend")
