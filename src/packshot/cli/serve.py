"""packshot serve: the REST API and web app (FastAPI + uvicorn), with the built-in job queue."""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("serve", help="run the web app and REST API",
                       description="Serve the web app and the REST API (OpenAPI at /docs). Jobs run in "
                                   "this process (--queue local, default) or on 'packshot worker' "
                                   "processes (--queue celery). Settings also come from PACKSHOT_* "
                                   "variables (e.g. PACKSHOT_API_KEYS=k1,k2).")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--data-dir", default=None, help="database, blobs (default: $XDG_DATA_HOME/packshot)")
    p.add_argument("--database-url", default=None,
                   help="SQLAlchemy URL, e.g. postgresql://user@host/db (default: SQLite in the data dir)")
    p.add_argument("--blob-url", default=None, metavar="URL",
                   help="blob storage: s3://bucket/prefix (credentials from the AWS_* variables; "
                        "default: the folder <data-dir>/blobs)")
    p.add_argument("--s3-endpoint-url", default=None, metavar="URL",
                   help="S3-compatible endpoint (MinIO, R2, B2, Ceph; or AWS_ENDPOINT_URL)")
    p.add_argument("--queue", choices=("local", "celery"), default=None,
                   help="local: in-process workers (default); celery: enqueue for 'packshot worker'")
    p.add_argument("--broker", dest="broker_url", default=None, help="Celery broker URL (redis://...)")
    p.add_argument("--api-key", action="append", default=[], metavar="KEY",
                   help="require this API key (repeatable; 'sha256:HEX' gives a hashed key)")
    p.add_argument("--model-slots", type=int, default=None, help="jobs running a model at once (default 2)")
    p.add_argument("--rate-limit", dest="rate_limit_per_minute", type=int, default=None,
                   help="requests per minute per key (default 600)")
    p.add_argument("--stale-after", type=float, default=60.0, metavar="SECONDS",
                   help="a running job whose worker is silent this long runs again (default 60)")
    p.add_argument("--log-level", default="warning", help="uvicorn log level (default warning)")
    p.set_defaults(func=run)


def run(args) -> int:
    import logging
    import os
    import sys

    from ..config import Settings
    from ..errors import InvalidInputError

    overrides = {k: getattr(args, k) for k in ("data_dir", "database_url", "queue", "broker_url",
                                               "model_slots", "rate_limit_per_minute", "blob_url",
                                               "s3_endpoint_url")}
    settings = Settings.from_env(**overrides)
    if args.api_key:
        settings = settings.model_copy(update={"api_keys": [*settings.api_keys, *args.api_key]})
    if not (0 < args.port < 65536):
        raise InvalidInputError(f"port {args.port} is not in 1..65535")
    if settings.blob_url:  # a bad bucket or endpoint: one line now, not a traceback at start-up
        from ..store.objects import open_blobs
        open_blobs(settings)
    try:
        import uvicorn

        from ..api import create_app
        from ..jobs import QueueOptions
    except ImportError as e:
        if (e.name or "").startswith("packshot"):  # our own module is broken: a bug, not a missing extra
            raise
        from ..errors import DependencyMissingError
        raise DependencyMissingError(f"packshot serve ({e.name} is missing)", "server") from None
    # test hook (see packshot.jobs.runner): slow every progress step down, to kill a job mid-way
    delay = float(os.environ.get("PACKSHOT_TEST_STEP_DELAY", "0") or 0)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from ..api.server import PortInUseError, bind, protocol_class

    try:  # the port first: a second server on a taken port must not take a single job
        sock = bind(args.host, args.port)
    except PortInUseError as e:
        print(f"packshot: error: {e.strerror}", file=sys.stderr, flush=True)
        return 3
    except OSError as e:
        print(f"packshot: error: cannot listen on {args.host}:{args.port} ({e.strerror})", file=sys.stderr,
              flush=True)
        return 3
    app = create_app(settings, queue_options=QueueOptions(stale_after_s=args.stale_after, step_delay_s=delay))
    keys = "API keys required" if settings.api_keys else "no API keys (anyone who can connect may use it)"
    print(f"packshot serving on http://{args.host}:{args.port} (queue {settings.queue}; {keys})", flush=True)
    # keep-alive longer than clients' idle pools (httpx/browsers: 5 s+), so a reused connection is
    # not closed under a request in flight; headers must arrive within header_timeout_s (slow loris)
    config = uvicorn.Config(app, log_level=args.log_level, access_log=False, timeout_keep_alive=75,
                            timeout_graceful_shutdown=10,
                            http=protocol_class(settings.header_timeout_s, max_pending=256))
    uvicorn.Server(config).run(sockets=[sock])
    return 0
