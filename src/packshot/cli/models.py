"""packshot models list | pull ID: the known weights, which are here, and fetching them; the trained
adapters in ``<model_dir>/adapters`` are listed after the weights (``--json``: rows of kind "adapter")."""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("models", help="list known model weights (present/missing) or pull one",
                       description="Model weights packshot knows: id, kind, licence, download size, and "
                                   "whether they are present locally (model dir or Hugging Face cache).")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION")
    lp = msub.add_parser("list", help="show every known model and where it is (default)")
    lp.add_argument("--json", action="store_true", help="machine-readable output")
    lp.set_defaults(func=run)
    pp = msub.add_parser("pull", help="download a model (needs network)",
                         description="Download a model into the model dir (PACKSHOT_MODEL_DIR) with "
                                     "huggingface_hub. ID is a registry id (see 'packshot models list') "
                                     "or a Hugging Face repo id owner/name.")
    pp.add_argument("id", metavar="ID")
    pp.add_argument("--config-only", action="store_true",
                    help="only configs and tokenizers (what a single-file .safetensors checkpoint needs)")
    pp.set_defaults(func=run)
    p.set_defaults(func=run, models_command="list", json=False)


def _size(gb: float) -> str:
    return f"{gb * 1000:.0f} MB" if gb < 1 else f"{gb:.1f} GB"


def run(args) -> int:
    from ..config import Settings

    settings = Settings.from_env()
    if args.models_command == "pull":
        return _pull(args, settings)
    return _list(args, settings)


def _list(args, settings) -> int:
    import json

    from ..models import list_models

    from ..models.adapters import adapters_dir, scan_adapters

    rows = list_models(settings)
    adapters, broken = scan_adapters(settings)
    if getattr(args, "json", False):
        print(json.dumps([{"id": r.spec.id, "kind": r.spec.kind, "repo_id": r.spec.repo_id,
                           "licence": r.spec.licence, "commercial_ok": r.spec.commercial_ok,
                           "size_gb": r.spec.size_gb, "status": r.status,
                           "where": str(r.where) if r.where else None, "problem": r.problem}
                          for r in rows] + [_adapter_json(a) for a in adapters]
                         + [{"id": p.name, "kind": "adapter", "status": "broken", "where": str(p), "problem": why}
                            for p, why in broken], indent=2))
        return 0
    table = [("ID", "KIND", "LICENCE", "SIZE", "STATUS", "WHERE")]
    for r in rows:
        lic = r.spec.licence + ("" if r.spec.commercial_ok else " (NON-COMMERCIAL)")
        where = str(r.where) if r.where else f"pull: packshot models pull {r.spec.id}"
        table.append((r.spec.id, r.spec.kind, lic, _size(r.spec.size_gb), r.status, where))
    widths = [max(len(row[i]) for row in table) for i in range(5)]
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row[:5], widths)) + "  " + row[5])
    for r in rows:
        if r.problem:
            print(f"note: {r.spec.id}: {r.problem}")
    _print_adapters(adapters, broken)
    print(f"model dir: {settings.model_dir} (set PACKSHOT_MODEL_DIR); also searched: the Hugging Face cache; "
          f"trained adapters: {adapters_dir(settings)}"
          + ("" if adapters or broken else " (none yet: packshot train PHOTO... --base MODEL --name NAME)"))
    return 0


def _adapter_base(a) -> str:
    from ..models.adapters import FAMILY_NAMES
    base = a.base_id or (a.base_ref.rstrip("/").rsplit("/", 1)[-1] if a.base_ref else "?")
    return f"{base} ({FAMILY_NAMES.get(a.family, a.family)})"


def _adapter_json(a) -> dict:
    m = a.meta
    return {"id": a.path.name, "kind": "adapter", "name": a.name, "method": a.method, "token": a.token,
            "base": a.base_ref, "base_id": a.base_id, "family": a.family, "steps": m.get("steps"),
            "final_loss": m.get("final_loss"), "product": m.get("product"), "created": m.get("created"),
            "status": "present", "where": str(a.path), "problem": None}


def _print_adapters(adapters, broken) -> None:
    """Trained adapters (``<model_dir>/adapters/<name>``): use one with ``generate --adapter NAME``."""
    if not adapters and not broken:
        return
    print()
    table = [("ADAPTER", "METHOD", "BASE", "TOKEN", "STEPS", "LOSS", "WHERE")]
    for a in adapters:
        loss = a.meta.get("final_loss")
        table.append((a.path.name, a.method, _adapter_base(a), a.token, str(a.meta.get("steps", "?")),
                      f"{loss:.4g}" if isinstance(loss, (int, float)) else "?", str(a.path)))
    widths = [max(len(row[i]) for row in table) for i in range(6)]
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row[:6], widths)) + "  " + row[6])
    for folder, why in broken:
        print(f"note: adapter {folder.name}: {why}")


def _bar(name: str):
    """A one-line progress display on a terminal (stderr); nothing when piped."""
    import sys

    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int | None) -> None:
        pct = f"{100 * done / total:5.1f}%" if total else ""
        sys.stderr.write(f"\r{name}: {done / 1e6:7.1f} MB {pct}")
        if total and done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()
    return show


def _pull(args, settings) -> int:
    import sys

    from ..models import MODELS, folder_size, pull

    spec = MODELS.get(args.id)
    if spec is not None and "file" in spec.extra:  # single-file (ONNX) model: no-op when present
        from ..models.download import single_file, single_file_problem, spec_checksum
        folder = settings.model_dir / spec.id
        check = spec_checksum(spec)
        if single_file_problem(spec, folder) is None and (
                check is None or check.of(single_file(spec, folder)) == check.hexdigest):
            print(f"{args.id} is already present in {folder} (checksum verified)")
            return 0
        path = pull(args.id, settings, progress=_bar(spec.extra["file"]),
                    log=lambda s: print(s, file=sys.stderr))
        print(f"pulled {args.id} into {path} ({folder_size(path) / 1e6:.1f} MB; licence {spec.licence}"
              f"{'' if spec.commercial_ok else ' (NON-COMMERCIAL)'}; checksum "
              f"{'verified' if check else 'not published: the file loads as a model'})")
        return 0
    path = pull(args.id, settings, config_only=args.config_only)
    what = "configs of " if args.config_only else ""
    spec = MODELS.get(args.id)
    lic = f"; licence {spec.licence}" + ("" if spec.commercial_ok else " (NON-COMMERCIAL)") if spec else ""
    print(f"pulled {what}{args.id} into {path} ({folder_size(path) / 1e6:.1f} MB{lic})")
    return 0
