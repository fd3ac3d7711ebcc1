"""packshot prompt: roll a random scene prompt, list curated examples, print the vocabulary.

    packshot prompt random [--seed S] [--json]
    packshot prompt examples [--engine studio|diffusion] [--json]
    packshot prompt vocab [--markdown | --json]
    packshot prompt parse "on a white marble table, light from the left" [--json]
    packshot prompt build --surface "on oak" --mood "golden hour"
    packshot prompt suggest PHOTO [-n 6] [--json] [--captioner ID]
    packshot prompt describe PHOTO [--json] [--captioner ID]
"""
from __future__ import annotations

_FIELDS = ("surface", "surroundings", "background", "lighting", "mood")  # = packshot.prompts.FIELDS


def register(sub) -> None:
    p = sub.add_parser("prompt", help="random scene prompts, curated examples and the studio vocabulary",
                       description="Prompt helpers: the dice, curated examples, the studio engine's "
                                   "vocabulary, and how the studio engine reads a prompt.")
    ps = p.add_subparsers(dest="prompt_command", metavar="ACTION")
    ps.required = True

    r = ps.add_parser("random", help="a random scene prompt the studio engine fully understands")
    r.add_argument("--seed", type=int, default=None, help="same seed, same prompt")
    r.add_argument("--json", action="store_true", help="print {prompt, fields} as JSON")
    r.set_defaults(func=run, action="random")

    e = ps.add_parser("examples", help="curated example prompts and the engines that suit them")
    e.add_argument("--engine", choices=("studio", "diffusion"), default=None,
                   help="only the examples that suit this engine")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=run, action="examples")

    v = ps.add_parser("vocab", help="the words the studio engine understands, by category")
    g = v.add_mutually_exclusive_group()
    g.add_argument("--markdown", action="store_true", help="print docs/vocabulary.md")
    g.add_argument("--json", action="store_true")
    v.set_defaults(func=run, action="vocab")

    a = ps.add_parser("parse", help="show how the studio engine reads a prompt (and the unused words)")
    a.add_argument("text", help="the prompt")
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=run, action="parse")

    b = ps.add_parser("build", help="join structured fields into one prompt")
    for f in _FIELDS:
        b.add_argument(f"--{f}", default=None)
    b.set_defaults(func=run, action="build")

    s = ps.add_parser("suggest", help="scene prompts that suit the product in a photo",
                      description="n structured scene prompts from the product itself: its palette "
                                  "(complementary, analogous, neutral backdrops), shape (tabletop, podium, "
                                  "flat lay, hanging), finish (glossy: reflections; matte: soft light) "
                                  "and view; a configured captioner adds the product's category.")
    s.add_argument("photo", help="product photo")
    s.add_argument("-n", type=int, default=6, help="number of suggestions, 1..12 (default 6)")
    s.add_argument("--json", action="store_true",
                   help="print a list of {surface, surroundings, background, lighting, mood, prompt, ...}")
    s.add_argument("--captioner", default=None, metavar="ID",
                   help="captioning model id or folder (default $PACKSHOT_CAPTIONER; none: measured only)")
    s.set_defaults(func=run_suggest, action="suggest")

    d = ps.add_parser("describe", help="a reference scene photo in the five structured fields",
                      description="Describe a reference scene (not its product) as surface, surroundings, "
                                  "background, lighting and mood.")
    d.add_argument("photo", help="reference scene photo")
    d.add_argument("--json", action="store_true")
    d.add_argument("--captioner", default=None, metavar="ID",
                   help="captioning model id or folder (default $PACKSHOT_CAPTIONER; none: measured only)")
    d.set_defaults(func=run_suggest, action="describe")


def run_suggest(args) -> int:
    import json

    from ..config import Settings

    settings = Settings.from_env()
    if args.action == "suggest":
        from ..prompts.suggest import suggest

        items = [s.to_dict() for s in suggest(args.photo, args.n, settings=settings, captioner=args.captioner)]
        if args.json:
            print(json.dumps(items, indent=2))
        else:
            for i, s in enumerate(items, 1):
                print(f"{i}. {s['prompt']}")
                print(f"   [{s['palette']}, {s['arrangement']}] " + "; ".join(s["why"][:3]))
        return 0
    from ..prompts.describe import describe

    d = describe(args.photo, settings=settings, captioner=args.captioner).to_dict()
    if args.json:
        print(json.dumps(d, indent=2))
    else:
        for f in _FIELDS:
            print(f"{f:13} {d[f] or '-'}  ({d['source'][f]})")
        print(f"{'prompt':13} {d['prompt']}")
    return 0


def run(args) -> int:
    import json

    from .. import prompts
    from ..prompts import vocabulary as V

    if args.action == "random":
        r = prompts.random_prompt(args.seed)
        print(json.dumps(r, indent=2) if args.json else r["prompt"])
    elif args.action == "examples":
        exs = prompts.examples(args.engine)
        if args.json:
            print(json.dumps(exs, indent=2))
        else:
            for ex in exs:
                print(f"{ex['title']:<24} [{', '.join(ex['engines'])}]  {ex['prompt']}")
    elif args.action == "vocab":
        if args.markdown:
            print(V.vocabulary_markdown(), end="")
        elif args.json:
            data = {cat: {w: {k: v for k, v in eff.items()} for w, eff in d["words"].items()}
                    for cat, d in V.VOCABULARY.items()}
            print(json.dumps(data, indent=2))
        else:
            sizes = V.size()
            print(f"{sum(sizes.values())} words and phrases in {len(sizes)} categories "
                  "(see docs/vocabulary.md; --markdown prints it)")
            for cat, d in V.VOCABULARY.items():
                print(f"\n{cat} ({sizes[cat]}): {d['doc']}")
                print("  " + ", ".join(d["words"]))
    elif args.action == "parse":
        p = prompts.parse_prompt(args.text)
        info = {
            "layout": p.layout,
            "surface": {"material": p.surface.material, "colours": list(p.surface.colours)},
            "backdrop": {"material": p.backdrop.material, "colours": list(p.backdrop.colours)},
            "podium": p.podium and {"shape": p.podium, "material": p.podium_part.material,
                                    "colours": list(p.podium_part.colours)},
            "palette": p.palette, "light": p.light and [round(v, 3) for v in p.light],
            "light_words": list(p.light_words), "moods": list(p.moods),
            "surroundings": [x for x in (p.gobo and f"{p.gobo} shadows", p.bokeh and "bokeh",
                                         p.arch and "arch", p.caustics and "caustics") if x],
            "used": [f"{m.phrase} ({m.category})" for m in p.matches],
            "unused": list(p.unused),
        }
        if args.json:
            print(json.dumps(info, indent=2))
        else:
            for k, v in info.items():
                if v not in (None, [], {}):
                    print(f"{k:13} {v if not isinstance(v, list) else ', '.join(map(str, v))}")
    elif args.action == "build":
        print(prompts.build_prompt({f: getattr(args, f) for f in _FIELDS}))
    return 0

