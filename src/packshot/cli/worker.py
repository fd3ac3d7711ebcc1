"""packshot worker: a Celery worker that runs generation jobs queued by 'packshot serve --queue celery'."""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("worker", help="run generation jobs from the Celery queue (GPU machines)",
                       description="A Celery worker for jobs queued by 'packshot serve --queue celery'. It "
                                   "needs the server's database (--database-url) and data dir (shared "
                                   "storage). Messages are acknowledged after the job: a killed worker's "
                                   "job is delivered again.")
    p.add_argument("--broker", dest="broker_url", default=None,
                   help="broker URL (default redis://127.0.0.1:6379/0 or PACKSHOT_BROKER_URL)")
    p.add_argument("--data-dir", default=None, help="the server's data dir (blobs)")
    p.add_argument("--database-url", default=None, help="the server's database URL")
    p.add_argument("--concurrency", type=int, default=1,
                   help="jobs at once in this worker (model slots; default 1)")
    p.add_argument("--stale-after", type=float, default=60.0, metavar="SECONDS",
                   help="take over a job whose worker has been silent this long (default 60)")
    p.add_argument("--visibility-timeout", type=float, default=600.0, metavar="SECONDS",
                   help="redeliver an unacknowledged message after this long (default 600)")
    p.add_argument("--loglevel", default="warning", help="Celery log level (default warning)")
    p.set_defaults(func=run)


def run(args) -> int:
    import os

    from ..config import Settings
    from ..errors import InvalidInputError

    if args.concurrency < 1:
        raise InvalidInputError(f"--concurrency {args.concurrency} must be at least 1")
    settings = Settings.from_env(data_dir=args.data_dir, database_url=args.database_url,
                                 broker_url=args.broker_url, queue="celery")
    settings = settings.model_copy(update={"model_slots": args.concurrency})
    try:
        from ..jobs.celery_app import WorkerContext, make_celery, register_task
    except ImportError as e:
        from ..errors import DependencyMissingError
        raise DependencyMissingError(f"packshot worker ({e.name} is missing)", "server") from None
    # test hook (see packshot.jobs.runner): slow every progress step down, to kill a job mid-way
    delay = float(os.environ.get("PACKSHOT_TEST_STEP_DELAY", "0") or 0)
    app = make_celery(settings.broker_url, visibility_timeout_s=args.visibility_timeout)
    register_task(app, lambda: WorkerContext(settings, step_delay_s=delay, stale_after_s=args.stale_after,
                                             concurrency=args.concurrency))
    app.packshot_context()  # open the database (and migrate) before taking the first message
    pool = "solo" if args.concurrency == 1 else "threads"
    print(f"packshot worker: broker {settings.broker_url}, pool {pool} x{args.concurrency}", flush=True)
    app.worker_main(["worker", f"--pool={pool}", f"--concurrency={args.concurrency}",
                     f"--loglevel={args.loglevel}", "--without-gossip", "--without-mingle",
                     "--without-heartbeat", "-Q", "packshot", "-n", f"packshot@{os.uname().nodename}.{os.getpid()}"])
    return 0
