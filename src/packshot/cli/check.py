"""packshot check IMAGE... --marketplace NAME [--fix] [--json] | packshot check --rules"""
from __future__ import annotations

MARKETPLACE_NAMES = ("amazon", "walmart", "google", "ebay", "etsy", "shopify")  # = marketplace.MARKETPLACES
STATUS = {"pass": "PASS", "fail": "FAIL", "warn": "warn", "n/a": " n/a"}


def register(sub) -> None:
    p = sub.add_parser("check", help="check images against a marketplace's image rules (--fix writes a compliant copy)",
                       description="Check each image against the marketplace's rules: each rule with its "
                                   "measured value. Exit 0: all pass; 1: some fail; 2: bad input.")
    p.add_argument("images", nargs="*", metavar="IMAGE", help="image files to check")
    p.add_argument("--marketplace", "-m", default=None, help=" | ".join(MARKETPLACE_NAMES) + " (default amazon)")
    p.add_argument("--fix", action="store_true",
                   help="write a compliant copy (IMAGE.MARKETPLACE.jpg/png, or into --output) where a fix is "
                        "honest; explain where it is not")
    p.add_argument("-o", "--output", default=None, metavar="DIR", help="folder for --fix copies")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--rules", action="store_true", help="print the rules table (Markdown) and exit")
    p.set_defaults(func=run)


def _print_report(rep) -> None:
    print(f"{rep.source}: {rep.marketplace}: {'PASS' if rep.passed else 'FAIL'}")
    for r in rep.results:
        print(f"  {STATUS[r.status]}  {r.check:<10} {r.value}  [{r.level}: {r.rule}]")


def _fix_all(reports, args) -> list:
    """A compliant copy of each failing image: IMAGE.MARKETPLACE.(jpg|png) or into --output."""
    from pathlib import Path

    from ..config import Settings
    from ..marketplace.fix import fix_image

    settings = Settings.from_env()
    out = []
    for rep in reports:
        src = Path(rep.source)
        folder = Path(args.output) if args.output else src.parent
        out.append(fix_image(src, args.marketplace, folder / f"{src.stem}.{args.marketplace}{src.suffix}", settings))
    return out


def run(args) -> int:
    import json
    from pathlib import Path

    from ..errors import InvalidInputError
    from ..marketplace import check_image, markdown_table, rules_for

    if args.marketplace is not None:
        rules_for(args.marketplace)  # unknown name: one line naming it, exit 2
    if args.rules:
        print(markdown_table([args.marketplace] if args.marketplace else None))
        return 0
    if not args.images:
        raise InvalidInputError("give at least one IMAGE to check (or --rules)")
    args.marketplace = args.marketplace or "amazon"
    for img in args.images:  # bad input first, before anything is written
        if not Path(img).is_file():
            raise InvalidInputError(f"{img}: no such file")
    reports = [check_image(img, args.marketplace) for img in args.images]
    fixes = []
    if args.fix:
        fixes = _fix_all(reports, args)
    if args.json:
        print(json.dumps({"marketplace": args.marketplace, "reports": [r.as_dict() for r in reports],
                          "fixes": [f.as_dict() for f in fixes]}, indent=2))
    else:
        for rep in reports:
            _print_report(rep)
        for f in fixes:
            if f.output:
                state = "passes" if f.after.passed else "still fails"
                print(f"fixed: {f.source} -> {f.output} ({state}): {'; '.join(f.actions)}")
            else:
                print(f"not fixed: {f.refused}")
    if args.fix:
        return 0 if all((f.after is not None and f.after.passed) for f in fixes) else 1
    return 0 if all(r.passed for r in reports) else 1
