"""packshot looks: saved scene recipes (``generate --look NAME`` applies one).

    packshot looks save NAME --from out/results.json [--rank 1]     # the look of a candidate you liked
    packshot looks save NAME --prompt "on oak, window light" --seed 7 --preset etsy ...
    packshot looks list [--json] | show NAME | delete NAME

Looks live in ``<data dir>/looks.json`` (``PACKSHOT_DATA_DIR``); the service keeps its own per API
key (``/api/v1/looks``).
"""
from __future__ import annotations

from .common import later


def register(sub) -> None:
    p = sub.add_parser("looks", help="saved scene recipes: save, list, show, delete (generate --look NAME)",
                       description="A look is a saved scene: prompt, engine and its settings, canvas, view, "
                                   "light and seed. 'packshot generate PHOTO --look NAME' applies it; options "
                                   "given there override it.")
    ps = p.add_subparsers(dest="looks_command", metavar="ACTION", parser_class=type(p))
    ps.required = True
    s = ps.add_parser("save", help="save a look from a results.json candidate or from options")
    s.add_argument("name", help="the look's name")
    s.add_argument("--from", dest="source", metavar="RESULTS_JSON", default=None,
                   help="a results.json written by 'packshot generate': its request and the candidate's seed")
    s.add_argument("--rank", type=int, default=1, help="which candidate of --from (default 1, the best)")
    s.set_defaults(func=run, action="save")
    later(s, _options)
    ls = ps.add_parser("list", help="the saved looks")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=run, action="list")
    sh = ps.add_parser("show", help="one look as JSON")
    sh.add_argument("name")
    sh.set_defaults(func=run, action="show")
    d = ps.add_parser("delete", help="delete a look")
    d.add_argument("name")
    d.set_defaults(func=run, action="delete")


def _options(p) -> None:
    from ..looks import PER_PRODUCT
    from ..schema import GenerateRequest
    from .options import add_options

    # the scene options of generate (the same schema fields), without the per-photo ones
    from types import SimpleNamespace

    Scene = SimpleNamespace(model_fields={k: v for k, v in GenerateRequest.model_fields.items()
                                          if k not in PER_PRODUCT and k != "engine"})
    group = p.add_argument_group("scene (as for generate)")
    group.add_argument("--engine", dest="bg_engine", default=None, metavar="NAME",
                       help=GenerateRequest.model_fields["engine"].description)
    add_options(group, Scene)
    p.set_defaults(scene_model=Scene)


def run(args) -> int:
    import json

    from ..config import Settings
    from ..errors import InvalidInputError
    from ..looks import FileLooks, look_from_results, make_look

    book = FileLooks.for_settings(Settings.from_env())
    if args.action == "save":
        from .options import values

        given = values(args, args.scene_model)
        if args.bg_engine:
            given["engine"] = args.bg_engine
        if args.source and given:
            raise InvalidInputError(f"give either --from or scene options ({', '.join(sorted(given))}), not both")
        look = look_from_results(args.name, args.source, args.rank) if args.source else make_look(args.name, given)
        book.put(look)
        print(f"saved look {look.name!r} to {book.path}: {look.request.get('prompt', '')!r}, "
              f"seed {look.request.get('seed')}")
    elif args.action == "list":
        looks = book.list()
        if args.json:
            print(json.dumps([lk.model_dump(mode="json") for lk in looks], indent=2))
        else:
            for lk in looks:
                r = lk.request
                print(f"{lk.name:<24} {r.get('engine', 'studio'):<9} seed {str(r.get('seed')):<10} {r.get('prompt', '')}")
            if not looks:
                print(f"no looks saved yet in {book.path}")
    elif args.action == "show":
        print(json.dumps(book.get(args.name).model_dump(mode="json"), indent=2))
    elif args.action == "delete":
        book.delete(args.name)
        print(f"deleted look {args.name!r}")
    return 0
