"""Prompt helpers: parsing with the studio vocabulary, the dice, examples, the builder, the CLI."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from packshot.errors import InvalidInputError
from packshot.prompts import FIELDS, build_prompt, examples, parse_prompt, random_prompt
from packshot.prompts import vocabulary as V

ROOT = Path(__file__).resolve().parents[1]


# -- parsing ---------------------------------------------------------------------------------------
def test_multi_word_phrases_and_scene_parts():
    p = parse_prompt("On a white marble table, against a sage green wall, golden hour, light from the left")
    assert p.layout == "tabletop"
    assert p.surface.material == "marble" and p.surface.colours == ("white",)
    assert p.backdrop.colours == ("sage green",)           # a phrase, not "sage" + "green"
    assert p.time == "golden hour"
    assert p.light is not None and p.light[0] > 0.8          # travels right: comes from the left
    assert p.unused == ()


def test_stone_podium_and_paper_sweep():
    p = parse_prompt("a stone podium on a pastel pink seamless paper sweep")
    assert p.podium == "cylinder" and p.podium_part.material == "stone"
    assert p.layout == "sweep"
    assert p.backdrop.material == "paper" and p.backdrop.colours == ("pink",)
    assert p.palette == "pastel"
    assert parse_prompt("on white paper").layout == "sweep"     # paper alone: a sweep
    assert parse_prompt("on white linen").layout == "tabletop"  # other materials: a surface


def test_plurals_suffixes_and_spellings():
    p = parse_prompt("Glossy TILES, leaf shadows, gray walls, warm fairy lights, sandy floor")
    assert p.surface.material == "sand"            # "sandy" -> sand (the last surface material)
    assert p.gobo == "leaves" and p.bokeh
    assert p.backdrop.colours == ("grey",)          # gray -> grey, walls -> wall
    assert "tile" in p.used and p.unused == ()


def test_tone_words_bind_to_the_next_colour_or_material():
    p = parse_prompt("pale pink background, on a dark oak table, light from the right")
    assert p.backdrop.colours == ("pale pink",)
    assert p.surface.material == "oak" and p.surface.tone < 0
    assert p.light[0] < -0.8
    assert "light" in p.used                         # "light from": the lighting word, not a tone
    assert sum(V.colour_rgb("pale pink")) > sum(V.colour_rgb("pink")) > sum(V.colour_rgb("dark pink"))


def test_unused_words_are_reported_once_in_order_and_stop_words_are_not():
    p = parse_prompt("on the beach with a surfboard and the beach umbrella, marble")
    assert p.unused == ("beach", "surfboard", "umbrella")
    assert p.surface.material == "marble"
    assert parse_prompt("").unused == () and parse_prompt(None).layout == "sweep"


def test_stray_material_after_a_named_surface_is_reported_not_silently_used():
    p = parse_prompt("on a walnut table next to a linen towel")
    assert p.surface.material == "walnut"
    assert "linen" in p.unused and "towel" in p.unused


def test_mood_and_grading_accumulate():
    soft = parse_prompt("soft airy morning")
    dark = parse_prompt("dramatic moody night")
    assert soft.g("brightness") > 0 > dark.g("brightness")
    assert dark.g("vignette") > soft.g("vignette")
    assert parse_prompt("monochrome").g("saturation") == 0.0


# -- vocabulary data -------------------------------------------------------------------------------
def test_vocabulary_is_consistent_with_the_renderer():
    from packshot.backgrounds.textures import KINDS

    for word, eff in V.VOCABULARY["surface"]["words"].items():
        assert eff["material"] in KINDS, word
        assert 0.0 <= eff["gloss"] <= 1.0
        assert len(eff["rgb"]) == 3
    for name, cols in V.PALETTES.items():
        for c in cols:
            V.colour_rgb(c)                                  # resolvable, tone words included
    for cat, data in V.VOCABULARY.items():
        assert data["doc"], cat
        for phrase, eff in data["words"].items():
            assert phrase == phrase.lower().strip() and "  " not in phrase
            assert eff.get("doc") or cat == "colour", (cat, phrase)
            assert phrase not in V.STOP_WORDS, phrase
    assert sum(V.size().values()) >= 250


def test_vocabulary_doc_is_in_sync_with_the_data():
    doc = (ROOT / "docs" / "vocabulary.md").read_text(encoding="utf-8")
    assert doc == V.vocabulary_markdown(), \
        "docs/vocabulary.md is stale: run `packshot prompt vocab --markdown > docs/vocabulary.md`"


# -- builder, dice, examples -----------------------------------------------------------------------
def test_build_prompt_orders_fields_and_skips_empty_ones():
    text = build_prompt({"mood": "golden hour", "surface": "on a  marble table ", "lighting": "",
                         "background": None})
    assert text == "on a marble table, golden hour"
    assert build_prompt({}) == ""
    assert FIELDS == ("surface", "surroundings", "background", "lighting", "mood")


@pytest.mark.parametrize("bad, named", [({"surfce": "oak"}, "surfce"), ({"mood": 3}, "mood")])
def test_build_prompt_rejects_unknown_or_non_text_fields(bad, named):
    with pytest.raises(InvalidInputError) as e:
        build_prompt(bad)
    assert named in str(e.value) and "\n" not in str(e.value)


def test_random_prompt_is_deterministic_and_varied():
    a, b = random_prompt(7), random_prompt(7)
    assert a == b and set(a["fields"]) == set(FIELDS)
    assert a["prompt"] == build_prompt(a["fields"])
    prompts = {random_prompt(s)["prompt"] for s in range(60)}
    assert len(prompts) >= 55
    assert isinstance(random_prompt()["prompt"], str)


def test_every_random_prompt_is_fully_understood_by_the_studio_engine():
    for s in range(400):
        r = random_prompt(s)
        p = parse_prompt(r["prompt"])
        assert p.unused == (), (s, r["prompt"], p.unused)


def test_examples_are_curated_and_honest_about_engines():
    exs = examples()
    assert 10 <= len(exs) <= 20
    titles = [e["title"] for e in exs]
    assert len(set(titles)) == len(titles)
    assert any(e["prompt"] == "pure white studio background" for e in exs)
    for e in exs:
        assert e["engines"] and set(e["engines"]) <= {"studio", "diffusion"}
        unused = parse_prompt(e["prompt"]).unused
        if "studio" in e["engines"]:
            assert unused == (), (e["title"], unused)       # studio renders every word
        else:
            assert unused, e["title"]                       # lifestyle: only diffusion paints it
    assert examples("diffusion") and all("diffusion" in e["engines"] for e in examples("diffusion"))
    exs[0]["title"] = "changed"
    assert examples()[0]["title"] != "changed"              # callers get copies


# -- CLI as a process ------------------------------------------------------------------------------
def test_cli_prompt_random(cli):
    r = cli("prompt", "random", "--seed", "3")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == random_prompt(3)["prompt"]
    j = cli("prompt", "random", "--seed", "3", "--json")
    assert json.loads(j.stdout) == random_prompt(3)


def test_cli_prompt_examples_vocab_parse_build(cli):
    r = cli("prompt", "examples", "--engine", "studio", "--json")
    assert r.returncode == 0 and all("studio" in e["engines"] for e in json.loads(r.stdout))
    v = cli("prompt", "vocab", "--markdown")
    assert v.returncode == 0 and v.stdout == V.vocabulary_markdown()
    v2 = cli("prompt", "vocab")
    assert "marble" in v2.stdout and "golden hour" in v2.stdout
    p = cli("prompt", "parse", "on marble at the beach", "--json")
    assert json.loads(p.stdout)["unused"] == ["beach"]
    b = cli("prompt", "build", "--surface", "on oak", "--mood", "golden hour")
    assert b.stdout.strip() == "on oak, golden hour"
    bad = cli("prompt", "roll")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
