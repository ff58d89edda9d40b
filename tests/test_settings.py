"""Production mode refuses insecure settings; development runs on safe defaults."""

from __future__ import annotations

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
