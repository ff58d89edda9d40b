"""Run the benchmarks: ``make bench`` (or ``python bench/run.py`` with DATABASE_URL and REDIS_URL set).

1. Creates a dedicated database (``engagement_bench``, dropped first if present) on the PostgreSQL server
   named by DATABASE_URL, migrates it, and picks an empty logical Redis database on REDIS_URL's server.
2. Runs ``run(ctx)`` of every ``bench/bench_*.py`` module (or those named with ``--only``); each seeds what
   it needs through the ORM and starts its own server with ``harness.uvicorn_server``.
3. Prints each report, writes ``bench/results/latest.json``, drops the database and empties the Redis db.

Exit status: 0 when every benchmark ran without errors (a missed aim is a result, not an error).
"""

from __future__ import annotations

import argparse
import base64
import importlib
import json
import os
import platform
import secrets
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import harness  # noqa: E402
from bench.harness import BenchResult, Context  # noqa: E402

BENCH_DB = os.environ.get("BENCH_DATABASE_NAME", "engagement_bench")


def discover(only: list[str]) -> list[str]:
    names = sorted(p.stem for p in Path(__file__).resolve().parent.glob("bench_*.py"))
    if only:
        unknown = [n for n in only if f"bench_{n}" not in names and n not in names]
        if unknown:
            raise SystemExit(f"unknown benchmark(s) {unknown}; have {names}")
        names = [n for n in names if n in only or n.removeprefix("bench_") in only]
    return names


def server_env(database_url: str, redis_url: str) -> dict[str, str]:
    """The environment of the servers under test: bench database, bench Redis db, no real providers."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "DATABASE_POOL_MAX": "8",
        # Production-like: DEBUG would keep every SQL query in memory and serve static files by finders.
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(48),
        # The bench process seeds channels (their credentials encrypted) that the servers read: one key ring.
        "CREDENTIALS_KEYS": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        # Nothing may reach real Twilio: no global credentials, and a REST base nobody listens on.
        "TWILIO_ACCOUNT_SID": "",
        "TWILIO_AUTH_TOKEN": "",
        "TWILIO_PHONE_NUMBER": "",
        "TWILIO_API_BASE_URL": "http://127.0.0.1:9",
        "CELERY_TASK_ALWAYS_EAGER": "0",
    }


def source_state() -> dict[str, object]:
    """Which code was measured: the commit, and whether the working tree differs from it."""
    import subprocess

    def git(*args: str) -> str:
        try:
            done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True)
        except (OSError, subprocess.CalledProcessError):
            return ""
        return done.stdout.strip()

    changed = [
        line for line in git("status", "--porcelain").splitlines() if not line[3:].startswith("bench/")
    ]
    return {"commit": git("rev-parse", "HEAD") or None, "changed_files_outside_bench": len(changed)}


def django_close() -> None:
    from django.db import connections

    for conn in connections.all(initialized_only=True):
        if hasattr(conn, "close_pool"):
            conn.close_pool()
        else:
            conn.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--only", action="append", default=[], help="run only this benchmark (repeatable)")
    parser.add_argument("--requests", type=int, default=2000, help="measured requests per scenario")
    parser.add_argument("--warmup", type=int, default=200, help="warm-up requests per scenario")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds per scenario")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn --workers")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the bench database at the end")
    args = parser.parse_args(argv)

    source_db, source_redis = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    if not source_db or not source_redis:
        print("DATABASE_URL and REDIS_URL must be set; run `make bench`", file=sys.stderr)
        return 2
    names = discover(args.only)
    t0 = time.monotonic()
    results: list[BenchResult] = []
    failures: list[str] = []
    database_url = redis_url = ""
    try:
        harness.log(f"creating database {BENCH_DB}")
        database_url = harness.database_recreate(source_db, BENCH_DB)
        redis_url = harness.redis_pick_empty_db(source_redis)
        env = server_env(database_url, redis_url)
        harness.log("migrating")
        harness.manage(env, "migrate", "--noinput")
        os.environ.update(
            {k: env[k] for k in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL", "CREDENTIALS_KEYS")}
        )
        os.environ["DATABASE_POOL_MAX"] = "10"  # bench_campaigns ticks in 6 threads beside the main one
        import django

        django.setup()
        ctx = Context(
            database_url=database_url,
            redis_url=redis_url,
            server_env=env,
            requests=args.requests,
            warmup=args.warmup,
            concurrency=args.concurrency,
            workers=args.workers,
            rounds=args.rounds,
        )
        for name in names:
            harness.log(f"running {name}")
            module = importlib.import_module(f"bench.{name}")
            try:
                result: BenchResult = module.run(ctx)
            except Exception:
                failures.append(f"{name} crashed:\n{traceback.format_exc()}")
                continue
            results.append(result)
            failures += [f"{result.name}: {e}" for e in result.errors]
    except Exception:
        failures.append(traceback.format_exc())
    finally:
        if "django" in sys.modules and database_url:
            try:
                django_close()
            except Exception:
                failures.append(f"closing Django connections:\n{traceback.format_exc()}")
        if database_url and not args.keep_db:
            try:
                harness.database_drop(source_db, BENCH_DB)
            except Exception:
                failures.append(f"dropping {BENCH_DB}:\n{traceback.format_exc()}")
        if redis_url:
            try:
                harness.redis_flush(redis_url)
            except Exception:
                failures.append(f"emptying {redis_url}:\n{traceback.format_exc()}")

    print()
    print("=" * 100)
    for result in results:
        print(result.report)
        print("-" * 100)
    harness.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = harness.RESULTS_DIR / "latest.json"
    payload = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "duration_s": round(time.monotonic() - t0, 1),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "benchmarks": {r.name: r.data for r in results},
        "errors": failures,
    }
    out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"results written to {out.relative_to(ROOT)} ({payload['duration_s']} s)")
    if failures:
        print("\nERRORS:", file=sys.stderr)
        for failure in failures:
            print(f"  {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
