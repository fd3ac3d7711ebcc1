"""packshot worker: a Celery worker that runs generation jobs queued by 'packshot serve --queue celery'."""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("worker", help="run generation jobs from the Celery queue (GPU machines)",
                       description="A Celery worker for jobs queued by 'packshot serve --queue celery'. With "
                                   "--api URL and --worker-key KEY it needs nothing but the broker and the API "
                                   "(no database, no shared disk: inputs and results go over HTTP). Without "
                                   "--api it needs the server's database (--database-url) and blob store "
                                   "(--data-dir or --blob-url). Messages are acknowledged after the job: a "
                                   "killed worker's job is delivered again. --new-key/--revoke-key/--list-keys "
                                   "manage worker keys on the server machine and exit.")
    p.add_argument("--broker", dest="broker_url", default=None,
                   help="broker URL (default redis://127.0.0.1:6379/0 or PACKSHOT_BROKER_URL)")
    p.add_argument("--api", dest="api_url", default=None, metavar="URL",
                   help="the server's URL: jobs' inputs and results go over HTTP (or PACKSHOT_API_URL)")
    p.add_argument("--worker-key", default=None, metavar="KEY",
                   help="worker key for --api (or PACKSHOT_WORKER_KEY; see --new-key)")
    p.add_argument("--queues", default="gpu,cpu", metavar="Q[,Q]",
                   help="queues to take jobs from: gpu (diffusion, SAM, training), cpu (studio engine, "
                        "classic cutouts); default gpu,cpu")
    p.add_argument("--data-dir", default=None,
                   help="the server's data dir (shared mode), or this worker's own cache folder (--api)")
    p.add_argument("--database-url", default=None, help="the server's database URL (shared mode)")
    p.add_argument("--blob-url", default=None, help="the server's blob store, s3://bucket/prefix (shared mode)")
    p.add_argument("--concurrency", type=int, default=1,
                   help="jobs at once in this worker (model slots; default 1)")
    p.add_argument("--stale-after", type=float, default=60.0, metavar="SECONDS",
                   help="take over a job whose worker has been silent this long (default 60)")
    p.add_argument("--visibility-timeout", type=float, default=600.0, metavar="SECONDS",
                   help="redeliver an unacknowledged message after this long (default 600)")
    p.add_argument("--loglevel", default="warning", help="Celery log level (default warning)")
    keys = p.add_mutually_exclusive_group()
    keys.add_argument("--new-key", metavar="NAME", default=None,
                      help="create a worker key named NAME in the server's database, print it once, exit")
    keys.add_argument("--revoke-key", metavar="ID_OR_NAME", default=None,
                      help="revoke a worker key (refused from its next request on), exit")
    keys.add_argument("--list-keys", action="store_true", help="list worker keys, exit")
    p.set_defaults(func=run)


def _queues(text: str) -> list[str]:
    from ..errors import InvalidInputError
    from ..jobs.celery_app import QUEUES

    qs = [q.strip() for q in text.split(",") if q.strip()]
    bad = [q for q in qs if q not in QUEUES]
    if not qs or bad:
        raise InvalidInputError(f"--queues {text!r}: each queue must be one of {', '.join(QUEUES)}")
    return list(dict.fromkeys(qs))


def _manage_keys(args, settings) -> int:
    """--new-key / --revoke-key / --list-keys against the server's database."""
    from ..store import Store
    from ..store.workers import WorkerRegistry

    store = Store(settings)
    try:
        reg = WorkerRegistry(store)
        if args.new_key is not None:
            row, plain = reg.create_key(args.new_key)
            print(f"worker key {row.name!r} (id {row.id}); shown once, keep it secret:")
            print(plain)
        elif args.revoke_key is not None:
            row = reg.revoke_key(args.revoke_key)
            print(f"revoked worker key {row.name!r} (id {row.id})")
        else:
            for row in reg.list_keys():
                state = f"revoked {row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "active"
                print(f"{row.id}  {row.name}  created {row.created_at:%Y-%m-%d %H:%M}  {state}")
    finally:
        store.close()
    return 0


def run(args) -> int:
    import os

    from ..config import Settings
    from ..errors import InvalidInputError

    if args.concurrency < 1:
        raise InvalidInputError(f"--concurrency {args.concurrency} must be at least 1")
    settings = Settings.from_env(data_dir=args.data_dir, database_url=args.database_url, blob_url=args.blob_url,
                                 broker_url=args.broker_url, api_url=args.api_url, worker_key=args.worker_key,
                                 queue="celery")
    settings = settings.model_copy(update={"model_slots": args.concurrency})
    if args.new_key is not None or args.revoke_key is not None or args.list_keys:
        return _manage_keys(args, settings)
    try:
        from ..jobs.celery_app import WorkerContext, make_celery, register_task
    except ImportError as e:
        if (e.name or "").startswith("packshot"):  # our own module is broken: a bug, not a missing extra
            raise
        from ..errors import DependencyMissingError
        raise DependencyMissingError(f"packshot worker ({e.name} is missing)", "server") from None
    queues = _queues(args.queues)
    # test hook (see packshot.jobs.runner): slow every progress step down, to kill a job mid-way
    delay = float(os.environ.get("PACKSHOT_TEST_STEP_DELAY", "0") or 0)
    app = make_celery(settings.broker_url, visibility_timeout_s=args.visibility_timeout)
    if settings.api_url:
        factory = _remote_factory(settings, queues, delay, args)
    else:
        def factory():
            return WorkerContext(settings, step_delay_s=delay, stale_after_s=args.stale_after,
                                 concurrency=args.concurrency)
    register_task(app, factory)
    ctx = app.packshot_context()  # open the database / reach the API before taking the first message
    pool = "solo" if args.concurrency == 1 else "threads"
    if hasattr(ctx, "summary"):
        served = ctx.summary()
    else:
        from ..jobs.remote import device_info
        served = (f"queues {','.join(queues)}; device {device_info(settings)['device']}; resident models: none "
                  f"(at most {settings.resident_models}); database and blob store shared with the server")
    print(f"packshot worker: broker {settings.broker_url}, pool {pool} x{args.concurrency}; {served}", flush=True)
    app.worker_main(["worker", f"--pool={pool}", f"--concurrency={args.concurrency}",
                     f"--loglevel={args.loglevel}", "--without-gossip", "--without-mingle",
                     "--without-heartbeat", "-Q", ",".join(queues),
                     "-n", f"packshot@{os.uname().nodename}.{os.getpid()}"])
    return 0


def _remote_factory(settings, queues: list[str], delay: float, args):
    """--api mode: a RemoteContext (no database, no shared disk)."""
    import os
    from urllib.parse import urlparse

    from ..errors import InvalidInputError

    url = urlparse(settings.api_url)
    if url.scheme not in ("http", "https") or not url.netloc:
        raise InvalidInputError(f"--api {settings.api_url!r} is not an http(s)://host[:port] URL")
    if not settings.worker_key:
        raise InvalidInputError("--api needs --worker-key KEY (or PACKSHOT_WORKER_KEY); create one on the "
                                "server with 'packshot worker --new-key NAME'")
    if settings.database_url or settings.blob_url:
        raise InvalidInputError("--api takes no --database-url or --blob-url: a remote worker reaches both "
                                "through the API")
    # test hook: smaller upload chunks, so a test can cut a connection in the middle of an upload
    chunk = int(os.environ.get("PACKSHOT_TEST_UPLOAD_CHUNK", "0") or 0)

    def factory():
        from ..jobs.remote import CHUNK, ApiError, RemoteContext

        try:
            return RemoteContext(settings, queues=queues, step_delay_s=delay, stale_after_s=args.stale_after,
                                 concurrency=args.concurrency, chunk_size=chunk or CHUNK)
        except ApiError as e:
            raise InvalidInputError(f"--api {settings.api_url}: {e}") from None

    return factory
