"""The zoo's registry: a model name resolves to a builder and a card.

Builders register themselves with `@register(...)`; `create(name)` builds a model and attaches its
card as `model.card`, so every tool downstream (analyzer, trainer, viz) knows what it is holding.
"""

from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass, field
from typing import Callable

from torch import nn

from cnnlab.errors import CnnlabError


@dataclass(frozen=True)
class Paper:
    authors: str
    year: int
    title: str

    def __str__(self) -> str:
        return f"{self.authors} ({self.year}). {self.title}"


@dataclass(frozen=True)
class Card:
    """What a model is and the reference numbers the tests hold it to."""

    name: str
    family: str
    paper: Paper
    input_shape: tuple[int, int, int]  # default C, H, W
    num_classes: int
    params: int | None = None  # exact trainable parameters at the defaults
    macs: int | None = None  # multiply-accumulates per image at input_shape, where published
    published_error: str | None = None  # e.g. "top-5 15.3% (ILSVRC-2012 test)"
    init: str = ""  # weight initialisation, as the paper states it
    notes: str = ""
    aliases: tuple[str, ...] = field(default_factory=tuple)


_BUILDERS: dict[str, Callable[..., nn.Module]] = {}
_CARDS: dict[str, Card] = {}
_ALIASES: dict[str, str] = {}


def register(name: str, *, aliases: tuple[str, ...] = (), **card_fields):
    """Decorator: register `builder(**kwargs) -> nn.Module` under `name` with its card."""

    def decorate(builder):
        for key in (name, *aliases):
            if key in _BUILDERS or key in _ALIASES:
                raise ValueError(f"model name {key!r} registered twice")
            if key != key.lower():
                raise ValueError(f"model name {key!r} must be lower case (resolve ignores case)")
        _BUILDERS[name] = builder
        _CARDS[name] = Card(name=name, aliases=tuple(aliases), **card_fields)
        _ALIASES.update({alias: name for alias in aliases})
        return builder

    return decorate


def resolve(name: str) -> str:
    """The canonical name for `name` or an alias (any case: VGG16 is vgg16); unknown names get
    suggestions."""
    key = name.lower()
    if key in _BUILDERS:
        return key
    if key in _ALIASES:
        return _ALIASES[key]
    known = [*_BUILDERS, *_ALIASES]
    close = difflib.get_close_matches(key, known, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}?" if close else "run 'cnnlab list' to see the zoo"
    raise CnnlabError(f"unknown model '{name}': {hint}")


def card(name: str) -> Card:
    return _CARDS[resolve(name)]


def list_models(pattern: str = "*") -> list[str]:
    """Canonical names matching a shell-style pattern, in any case (also matched against aliases)."""
    return sorted(
        name
        for name, model_card in _CARDS.items()
        if any(fnmatch.fnmatchcase(key, pattern.lower()) for key in (name, *model_card.aliases))
    )


def builder(name: str) -> Callable[..., nn.Module]:
    return _BUILDERS[resolve(name)]
