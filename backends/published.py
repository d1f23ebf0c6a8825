"""Published weight files: found by name in a spec's `weights:` table, downloaded
once into a cache, and checked against their declared hash before any use.

No framework is imported here: a generated Keras or torch module calls this at
build time (only when given a published name), and `irc transfer` calls it too.
The cache is `$IRC_CACHE_DIR`, or `~/.cache/irc/weights`; each file sits under
its declared hash (`<cache>/<hash>/<file name>`), so two files of one name from
different places do not collide and a file is found again without the network.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

CACHE_ENV = "IRC_CACHE_DIR"
CHUNK = 1 << 20
TIMEOUT = 60  # seconds without a byte before a download is given up


class PublishedWeightsError(ValueError):
    """No such published file, or a download that is not the declared file."""


def cache_dir() -> Path:
    """Where downloaded files are kept: `$IRC_CACHE_DIR`, else ~/.cache/irc/weights."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured) if configured else Path.home() / ".cache" / "irc" / "weights"


def choose(
    spec: str, table: Mapping[str, Mapping[str, Any]], name: str, include_top: bool
) -> Mapping[str, Any]:
    """The entry (`url`, `md5` or `sha256`) of the file `name` for `include_top`."""
    if name not in table:
        published = ", ".join(sorted(table)) if table else "none"
        raise PublishedWeightsError(
            f"{spec} publishes no weights named {name!r} (it publishes: {published}); "
            "give a published name or the path of a weights file"
        )
    entry = table[name]
    key = "top" if include_top else "no_top"
    if entry.get(key) is None:
        other = "include_top=False" if include_top else "include_top=True"
        raise PublishedWeightsError(f"{spec}'s {name!r} weights are published only for {other}")
    return entry[key]


def _digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with path.open("rb") as file:
        while block := file.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def fetch(entry: Mapping[str, Any], cache: Path | None = None) -> Path:
    """The local copy of a published file, downloaded first if the cache lacks it.

    A file whose hash is not the declared one is deleted and refused: a
    PublishedWeightsError, never a half-written or unchecked file in the cache.
    """
    url = str(entry["url"])
    algorithm = "sha256" if entry.get("sha256") else "md5"
    expected = str(entry[algorithm])
    name = Path(urllib.parse.urlparse(url).path).name or "weights"
    target = (cache or cache_dir()) / expected / name
    if target.is_file() and _digest(target, algorithm) == expected:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # A partial file of this process's own: two processes fetching at once (training
    # workers, test workers) each download whole, and the last rename wins.
    handle, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{name}.", suffix=".part")
    part = Path(partial)
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response, open(handle, "wb") as out:
            while block := response.read(CHUNK):
                out.write(block)
        got = _digest(part, algorithm)
        if got != expected:
            raise PublishedWeightsError(
                f"{url} has {algorithm} {got}, not the declared {expected}; the file was not kept"
            )
        part.replace(target)
    except (OSError, http.client.HTTPException) as exc:  # IncompleteRead is no OSError
        raise PublishedWeightsError(f"cannot download {url}: {exc}") from exc
    finally:
        part.unlink(missing_ok=True)
    return target


def published_file(
    spec: str, table: Mapping[str, Mapping[str, Any]], name: str, include_top: bool
) -> tuple[Path, str]:
    """The checked local file of the published weights `name`, and their format."""
    entry = choose(spec, table, name, include_top)
    return fetch(entry), str(table[name]["format"])
