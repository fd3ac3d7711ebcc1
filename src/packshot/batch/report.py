"""``OUT/summary.json`` and ``OUT/report.html``: the contact sheet of a catalog run.

The report is one self-contained HTML file: thumbnails are embedded as ``data:`` URIs, the style
is inline, there is no script and no network reference, so it opens offline and can be mailed.
Per SKU: its images, the cut-out engine and confidence (when the segmenter gives one), the main
image's marketplace check rule by rule; failed SKUs are listed first with their one-line reason.
"""
from __future__ import annotations

import html
import json
from datetime import datetime, timezone
from pathlib import Path

from ..io import write_atomic

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{font-size:20px;margin:0 0 4px} .meta{color:#666;margin-bottom:16px}
.fail{background:#fff0f0;border:1px solid #e6b3b3;padding:8px 12px;border-radius:6px;margin-bottom:16px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:16px}
.sku{background:#fff;border:1px solid #ddd;border-radius:8px;padding:12px}
.sku.failed{border-color:#e6b3b3}
.sku h2{font-size:15px;margin:0 0 8px} .imgs{display:flex;gap:8px;flex-wrap:wrap}
.imgs figure{margin:0;text-align:center;font-size:11px;color:#666}
.imgs img{width:160px;height:160px;object-fit:contain;background:#eee;border:1px solid #ddd;display:block}
table{border-collapse:collapse;margin-top:8px;font-size:12px;width:100%}
td{padding:2px 6px;border-top:1px solid #eee;vertical-align:top}
.pass{color:#17803d}.fail-s{color:#b42318;font-weight:600}.warn{color:#b54708}.na{color:#888}
"""
STATUS_CLASS = {"pass": "pass", "fail": "fail-s", "warn": "warn", "n/a": "na"}


def summarize(run: dict, rows_input: str, out: Path, options: dict) -> dict:
    recs = run["records"]
    ok = [r for r in recs if r.get("status") == "ok"]
    images = sum(len(r.get("files", [])) for r in ok)
    made_images = run.get("made_images", 0)
    seconds = run["seconds"]
    return {
        "input": rows_input, "out": str(out), "options": options,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "counts": {"skus": len(recs), "ok": len(ok), "failed": len(recs) - len(ok), "images": images,
                   "main_passed": sum(1 for r in ok if r.get("check", {}).get("passed"))},
        "this_run": {"made": run["made"], "skipped": run["skipped"], "seconds": round(seconds, 2),
                     "images_per_second": round(made_images / seconds, 3) if seconds > 0 and made_images else None},
        "skus": [{k: v for k, v in r.items() if k != "thumbs"} for r in recs],
    }


def _sku_card(r: dict) -> str:
    e = html.escape
    failed = r.get("status") != "ok"
    parts = [f'<section class="sku{" failed" if failed else ""}" id="sku-{e(r["sku"])}">',
             f'<h2>{e(r["sku"])} &middot; {"FAILED" if failed else "ok"}</h2>']
    if failed:
        parts.append(f'<p class="fail-s">{e(r.get("reason", ""))}</p><p class="meta">{e(r.get("photo", ""))}</p>')
        return "".join(parts) + "</section>"
    figs = "".join(f'<figure><img alt="{e(r["sku"])} {e(f)}" src="{t}"><figcaption>{e(f)}</figcaption></figure>'
                   for f, t in zip(r["files"], r.get("thumbs", [])))
    parts.append(f'<div class="imgs">{figs}</div>')
    cut = r.get("cutout", {})
    conf = cut.get("confidence")
    conf_txt = f"{conf:.2f}" if isinstance(conf, (int, float)) else "not given by this segmenter"
    if cut.get("reasons"):
        conf_txt += f" ({'; '.join(cut['reasons'])})"
    parts.append(f'<p class="meta">cut-out: {e(cut.get("engine", "?"))}, confidence {e(conf_txt)}; '
                 f'preset {e(str(r.get("preset")))}; lifestyle: {e(str(r.get("look") or r.get("prompt") or "-"))}</p>')
    chk = r.get("check", {})
    rows = "".join(f'<tr><td class="{STATUS_CLASS.get(x["status"], "")}">{e(x["status"])}</td><td>{e(x["check"])}</td>'
                   f'<td>{e(x["value"])}</td></tr>' for x in chk.get("rules", []))
    verdict = "passes" if chk.get("passed") else "fails"
    parts.append(f'<div>main image {verdict} {e(chk.get("marketplace", ""))}</div><table>{rows}</table>')
    return "".join(parts) + "</section>"


def render_html(summary: dict, records: list[dict]) -> str:
    e = html.escape
    c = summary["counts"]
    failed = [r for r in records if r.get("status") != "ok"]
    fail_html = ""
    if failed:
        items = "".join(f'<li><b>{e(r["sku"])}</b>: {e(r.get("reason", ""))}</li>' for r in failed)
        fail_html = f'<div class="fail"><b>{len(failed)} failed</b><ul>{items}</ul></div>'
    speed = summary["this_run"]["images_per_second"]
    return (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>packshot catalog: {e(summary['input'])}</title><style>{CSS}</style></head><body>"
        f"<h1>Catalog run: {e(summary['input'])}</h1>"
        f"<div class=\"meta\">{c['skus']} SKUs, {c['ok']} ok, {c['failed']} failed, {c['images']} images; "
        f"main images passing {e(summary['options'].get('marketplace', ''))}: {c['main_passed']}/{c['ok']}; "
        f"{e(summary['finished_at'])}{f'; {speed} images/s this run' if speed else ''}</div>"
        f"{fail_html}<div class=\"grid\">{''.join(_sku_card(r) for r in records)}</div></body></html>")


def write_reports(run: dict, rows_input: str, out: Path, options: dict) -> dict:
    """Write ``summary.json`` and ``report.html`` (atomically) and return the summary."""
    summary = summarize(run, rows_input, out, options)
    write_atomic(out / "summary.json", json.dumps(summary, indent=2).encode("utf-8"))
    write_atomic(out / "report.html", render_html(summary, run["records"]).encode("utf-8"))
    return summary
