"""packshot dataset export OUT [--products ID ...] [--min-rating 4] [--api-key KEY] [--data-dir D]

Saved and highly rated results of the service's store -> one folder per row (image, mask,
structured caption, rating, seed) + metadata.jsonl (🤗 datasets imagefolder / diffusers layout).
"""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("dataset", help="export saved and highly rated results as a training set",
                       description="Training data from the service's store (the same --data-dir / "
                                   "--database-url as 'packshot serve').")
    ps = p.add_subparsers(dest="dataset_command", metavar="ACTION", parser_class=type(p))
    ps.required = True
    e = ps.add_parser("export", help="one folder per result (image.png, mask.png, caption.json) + metadata.jsonl",
                      description="Export the results that are saved or rated >= --min-rating, of one API key's "
                                  "products only. OUT must not exist or be empty. Loads with "
                                  "datasets.load_dataset('imagefolder', data_dir=OUT).")
    e.add_argument("out", metavar="OUT", help="output folder (new or empty)")
    e.add_argument("--products", nargs="+", default=None, metavar="ID", help="only these products")
    e.add_argument("--min-rating", type=int, default=4, help="rated at least this (1..5, default 4); saved "
                                                             "results are always included")
    e.add_argument("--api-key", default=None, metavar="KEY",
                   help="whose products (default $PACKSHOT_API_KEY; none: a server run without keys)")
    e.add_argument("--data-dir", default=None, help="the service's data dir (default: $XDG_DATA_HOME/packshot)")
    e.add_argument("--database-url", default=None, help="PostgreSQL (or other) URL; default SQLite in the data dir")
    e.add_argument("--blob-url", default=None, metavar="URL", help="s3://bucket/prefix when blobs live in S3")
    e.set_defaults(func=run)


def run(args) -> int:
    import os

    from ..config import Settings
    from ..dataset import export, owner_of
    from ..store import Store

    overrides = {"data_dir": args.data_dir, "database_url": args.database_url}
    if "blob_url" in Settings.model_fields:
        overrides["blob_url"] = args.blob_url
    settings = Settings.from_env(**overrides)
    key = args.api_key or os.environ.get("PACKSHOT_API_KEY")
    store = Store(settings)
    try:
        report = export(store, args.out, owner=owner_of(key), min_rating=args.min_rating, products=args.products)
    finally:
        store.close()
    print(f"wrote {report.rows} row{'s' if report.rows != 1 else ''} to {report.out}/ (metadata.jsonl)")
    for s in report.skipped:
        print(f"skipped: {s}")
    return 0
