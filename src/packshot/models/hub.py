"""``packshot models pull`` for Hugging Face repos: the listed files, verified, resumable, no pickle.

The real huggingface_hub path (``HfApi.model_info`` + ``hf_hub_download``; ``HF_ENDPOINT`` points
it at a mirror), with these rules on top:

* The Hub's metadata (``model_info(files_metadata=True)``) names every file with its size and
  digest: the sha256 of LFS files (weights), the git blob id of the others. Every file is checked
  against it after download; a mismatch deletes the file and fails the pull naming it.
* All files come from ONE commit (the revision is pinned to the commit the metadata describes).
* fp16 variants (``*.fp16.safetensors``) are taken instead of full-precision weights where the
  machine runs fp16 (a CUDA/Apple GPU with dtype auto or float16): half the download.
* Pickle weights (``.bin``, ``.ckpt``, ``.pt``, ``.pth``, ``.pkl``) are never fetched.
* Resumable: weights (LFS files) go through :func:`packshot.models.download.download`: an
  interrupted file stays as ``<name>.part`` and the next pull continues it with an HTTP Range
  request; it is renamed into place only when whole and its sha256 matches. Small files (configs,
  tokenizers) go through ``hf_hub_download`` and are checked against their git blob id. A failed
  pull keeps what it finished; a half folder is reported "incomplete" by ``models list``.
* Progress: a byte bar per weights file on a terminal (``HF_HUB_DISABLE_PROGRESS_BARS=1`` turns
  it off), and one ``log`` line per verified file.
"""
from __future__ import annotations

import fnmatch
import hashlib
from pathlib import Path
from typing import Callable

from ..config import Settings
from ..errors import ModelError

PICKLE_SUFFIXES = (".bin", ".ckpt", ".pt", ".pth", ".pkl", ".pickle")


def wants_fp16(settings: Settings) -> bool:
    """True where models will run in float16: dtype float16, or auto with a CUDA / Apple GPU."""
    want = (settings.dtype or "auto").strip().lower()
    if want in ("float32", "bfloat16"):
        return False
    if want == "float16":
        return True
    if (settings.device or "auto").strip().lower() == "cpu":
        return False
    try:
        import torch
    except ImportError:
        return False
    mps = getattr(torch.backends, "mps", None)
    return bool(torch.cuda.is_available() or (mps is not None and mps.is_available()))


def choose_files(names: list[str], patterns: list[str] | None, fp16: bool) -> list[str]:
    """The repo files to fetch: those matching ``patterns`` (all when None), never pickle, and the
    ``.fp16.`` variant of a weights file instead of it when ``fp16`` and the repo has one."""
    have = set(names)
    chosen = [n for n in names if patterns is None or any(fnmatch.fnmatch(n, p) for p in patterns)]
    out = []
    for n in chosen:
        if n.endswith(PICKLE_SUFFIXES):
            continue
        if fp16 and n.endswith(".safetensors") and ".fp16." not in n:
            variant = n[: -len(".safetensors")] + ".fp16.safetensors"
            if variant in have:
                n = variant
        out.append(n)
    return sorted(dict.fromkeys(out))


def _git_blob_id(path: Path) -> str:
    h = hashlib.sha1()
    h.update(b"blob %d\0" % path.stat().st_size)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _sha256(path: Path) -> str:
    from .download import Checksum
    return Checksum("sha256", "").of(path)


def verify(path: Path, sibling, repo: str) -> None:
    """Check ``path`` against the Hub's metadata for it; delete it and raise ModelError on mismatch."""
    lfs = getattr(sibling, "lfs", None)
    if lfs is not None and getattr(lfs, "sha256", None):
        want, got, algo = lfs.sha256.lower(), _sha256(path), "sha256"
    elif getattr(sibling, "blob_id", None):
        want, got, algo = sibling.blob_id.lower(), _git_blob_id(path), "git blob id"
    else:
        raise ModelError(f"{repo}/{sibling.rfilename}: the Hub gives no checksum for it; not trusted")
    if got != want:
        path.unlink(missing_ok=True)
        raise ModelError(f"{repo}/{sibling.rfilename}: {algo} mismatch after download (got {got[:16]}..., "
                         f"the Hub says {want[:16]}...); the file was deleted, pull again")


def _bar(name: str, total: int | None):
    """(progress callback, close) for one file: a tqdm byte bar on a terminal, else nothing."""
    import os
    import sys
    if not sys.stderr.isatty() or os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS", "").lower() in ("1", "true", "yes"):
        return (lambda done, total_: None), (lambda: None)
    from tqdm.auto import tqdm
    bar = tqdm(total=total, unit="B", unit_scale=True, desc=name, leave=False)

    def update(done: int, _total: int | None) -> None:
        bar.update(done - bar.n)

    return update, bar.close


def _fetch_weights(repo: str, sha: str, sibling, dest: Path) -> Path:
    """A weights (LFS) file by the shared resumable downloader, verified against the Hub's sha256."""
    from huggingface_hub import hf_hub_url
    from .download import Checksum, download
    import http.client
    update, close = _bar(sibling.rfilename, sibling.lfs.size)
    try:
        return download(hf_hub_url(repo, sibling.rfilename, revision=sha), dest / sibling.rfilename,
                        checksum=Checksum("sha256", sibling.lfs.sha256), size=sibling.lfs.size, progress=update)
    except http.client.HTTPException as e:   # the connection dropped mid-file (IncompleteRead, ...)
        raise ModelError(f"{repo}/{sibling.rfilename}: the download was interrupted ({type(e).__name__}); "
                         f"run the pull again to resume it") from None
    finally:
        close()


def pull_repo(repo: str, dest: Path, patterns: list[str] | None, *, fp16: bool = False,
              log: Callable[[str], None] | None = None) -> Path:
    """Fetch ``repo``'s chosen files into ``dest``, each verified. Errors propagate (the caller
    turns Hub errors into one line); finished files, and the ``.part`` of an interrupted one, stay
    for the next try."""
    from huggingface_hub import HfApi, hf_hub_download

    info = HfApi().model_info(repo, files_metadata=True)
    siblings = {s.rfilename: s for s in (info.siblings or [])}
    files = choose_files(list(siblings), patterns, fp16)
    if not files:
        raise ModelError(f"{repo}: no files match what packshot pulls ({', '.join(patterns or ['*'])})")
    dest.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(files, 1):
        sib = siblings[name]
        if getattr(sib, "lfs", None) is not None and (dest / name).is_file() and \
                (dest / name).stat().st_size == sib.lfs.size and _sha256(dest / name) == sib.lfs.sha256.lower():
            path = dest / name                                   # finished by an earlier pull
        elif getattr(sib, "lfs", None) is not None:
            path = _fetch_weights(repo, info.sha, sib, dest)     # sha256 checked by the downloader
        else:
            path = Path(hf_hub_download(repo, name, revision=info.sha, local_dir=dest))
            verify(path, sib, repo)
        if log is not None:
            log(f"[{i}/{len(files)}] {name}: verified")
    return dest
