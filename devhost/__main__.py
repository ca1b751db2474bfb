"""`python -m devhost`: the command line.

scripts/stack.py passes only `--port`, so the app, settings file, host.json and queue lease can also come from
DEVHOST_APP, DEVHOST_SETTINGS, DEVHOST_HOST_JSON and DEVHOST_QUEUE_LEASE_SECONDS (a flag wins over its variable).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from devhost.host import Options, serve
from devhost.queues import LEASE_SECONDS
from devhost.settings import ConfigError


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m devhost", description="Run a Functions app locally (dev only, not a production host)."
    )
    parser.add_argument("--port", type=int, default=7071)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--app", default=os.environ.get("DEVHOST_APP", "function_app:app"))
    parser.add_argument("--settings", default=os.environ.get("DEVHOST_SETTINGS", "local.settings.json"))
    parser.add_argument("--host-json", default=os.environ.get("DEVHOST_HOST_JSON", "host.json"))
    parser.add_argument(
        "--queue-lease",
        type=int,
        default=int(os.environ.get("DEVHOST_QUEUE_LEASE_SECONDS", LEASE_SECONDS)),
        help="seconds a received message stays invisible while its function runs (host: 600, renewed at half)",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.queue_lease < 7 * 86400:
        parser.error("--queue-lease must be between 1 second and 7 days")
    return Options(
        app=args.app,
        settings_path=Path(args.settings),
        host_json=Path(args.host_json),
        port=args.port,
        host=args.host,
        queue_lease_seconds=args.queue_lease,
    )


def configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    formatter = logging.Formatter("%(asctime)s.%(msecs)03dZ %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S")
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    for noisy in ("azure.core.pipeline.policies.http_logging_policy", "azure.identity"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    configure_logging()
    options = parse_args(argv)
    sys.path.insert(0, os.getcwd())  # the app is imported from the project folder, as the worker does
    try:
        return asyncio.run(serve(options))
    except ConfigError as exc:
        logging.getLogger("devhost").error("Startup failed: %s", exc)
        return 2
    except Exception:  # e.g. storage unreachable while creating the trigger queues
        logging.getLogger("devhost").exception("The dev host failed")
        return 1


if __name__ == "__main__":
    sys.exit(main())
