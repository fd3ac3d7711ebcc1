"""Side-by-side before/after picture for the README: the photo and the best candidate of a result.

usage: python examples/before_after.py PHOTO RESULT_DIR OUT.png
"""
import json
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageOps


def main(photo: str, result_dir: str, out: str, height: int = 480) -> None:
    doc = json.loads((Path(result_dir) / "results.json").read_text())
    best = Path(result_dir) / doc["candidates"][0]["file"]
    panels = []
    for label, path in (("before: the seller's photo", photo), (f"after: \"{doc['request']['prompt']}\"", best)):
        im = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
        im = im.resize((round(im.width * height / im.height), height), Image.LANCZOS)
        canvas = Image.new("RGB", (im.width, height + 28), "white")
        canvas.paste(im, (0, 28))
        ImageDraw.Draw(canvas).text((8, 8), label[:90], fill=(40, 40, 40))
        panels.append(canvas)
    w = sum(p.width for p in panels) + 12 * (len(panels) - 1)
    sheet = Image.new("RGB", (w, panels[0].height), "white")
    x = 0
    for p in panels:
        sheet.paste(p, (x, 0))
        x += p.width + 12
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
