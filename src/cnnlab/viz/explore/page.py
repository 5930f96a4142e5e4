"""The explorer's HTML: one file holding the page's script, styles, labels and document, so it opens
from disk with nothing fetched. The same page is what live mode serves, with `live` set."""

from __future__ import annotations

import html
import json
from functools import cache
from importlib import resources

from cnnlab.errors import CnnlabError

LANGUAGES = ("en", "zh")


@cache
def _static(name: str) -> str:
    return resources.files("cnnlab.viz.explore").joinpath("static", name).read_text(encoding="utf-8")


def labels() -> dict:
    return json.loads(_static("labels.json"))


def check_language(lang: str) -> str:
    if lang not in LANGUAGES:
        raise CnnlabError(f"unknown language '{lang}': choose one of {', '.join(LANGUAGES)}")
    return lang


def _script_json(payload) -> str:
    """JSON that is safe inside <script>: no '</' can end the element early."""
    return json.dumps(payload, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")


def render(network: dict, images: list[dict], lang: str = "en", live: bool = False) -> str:
    """The page for `network` (Explorer.network()) and its image records (Explorer.image(...))."""
    document = {"network": network, "images": images, "labels": labels(), "lang": check_language(lang), "live": live}
    page = _static("page.html")
    for marker, text in (("__CSS__", _static("explore.css")), ("__JS__", _static("explore.js")),
                         ("__TITLE__", html.escape(f"cnnlab explore: {network['title']}")),
                         ("__LANG__", "zh-CN" if lang == "zh" else "en"), ("__DATA__", _script_json(document))):
        page = page.replace(marker, text, 1)
    return page
