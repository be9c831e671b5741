"""CatLIP's caption labeller (card 07, section 2) with a hand-made noun table standing in for WordNet.

caption -> clean (URL-unquote, "+" -> space, strip HTML, collapse whitespace, ftfy when installed, lowercase)
        -> words -> part-of-speech tags -> noun lemmas (plural -> singular through the table)
        -> synset keys ("n" + the lemma's fixed offset, as upstream's `f"{pos}{offset}"`) -> vocabulary indices.

Unlike upstream (corenet `wordnet_tagged_classification.py`), the tags are used: only words tagged as nouns become
labels, so the colour in "a blue square" is an adjective and no label (upstream would label "blue", which has a
noun sense in WordNet as in this table). Vocabulary lookups are dicts, not a Python list scanned per word.
A caption with no known noun gives an empty label list and an all-zero target (trained on, never an error).
"""

from __future__ import annotations

import html
import re
import urllib.parse
from collections import Counter
from typing import Iterable, Sequence

import numpy as np

from models.text_bow import words

# Noun table: lemma -> its first noun sense's offset (a fixed, made-up number per lemma, like WordNet's)
NOUN_OFFSETS = {
    "circle": 13873502, "square": 13881644, "triangle": 13884740,
    "zero": 13742358, "one": 13742573, "two": 13743269, "three": 13744044, "four": 13744521, "five": 13744722,
    "six": 13744916, "seven": 13745086, "eight": 13745270, "nine": 13745420,
    "red": 4971928, "green": 4967191, "blue": 4972451, "yellow": 4967484, "purple": 4972983, "orange": 4967801,
    "photo": 3925226, "image": 3931044, "picture": 3931765, "background": 8659446, "table": 4379243,
    "camera": 2942699, "sky": 9436708, "wallpaper": 4559451, "stock": 13354420, "use": 407535, "look": 877083,
    "yesterday": 15156187, "wow": 7495327, "favourite": 5846054, "shape": 27807, "digit": 13741022,
}
# Other parts of speech words have (colours are adjectives before a noun; several nouns are also verbs)
OTHER_POS = {
    **{c: ("adj",) for c in ("red", "green", "blue", "yellow", "purple", "orange")},
    "stock": ("adj",), "favourite": ("adj",), "use": ("verb",), "look": ("verb",), "square": ("adj",),
    "yesterday": ("adv",), "wow": ("verb",), "one": ("adj",),
    "nice": ("adj",), "pretty": ("adj", "adv"), "blurry": ("adj",), "hd": ("adj",), "next": ("adj",),
    "free": ("adj",), "just": ("adv",), "so": ("adv",), "my": ("det",), "a": ("det",), "an": ("det",),
    "the": ("det",), "this": ("det",), "of": ("prep",), "to": ("prep",), "at": ("prep",), "on": ("prep",),
    "in": ("prep",), "with": ("prep",), "and": ("conj",), "is": ("verb",), "are": ("verb",),
    "taken": ("verb",),
}
IRREGULAR_PLURALS = {"sixes": "six", "skies": "sky", "photos": "photo", "ones": "one"}
COPULAS = ("is", "are", "was", "were", "looks")
_HTML = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")


def _ftfy():
    try:
        import ftfy
    except ImportError:  # not a dependency: mojibake is left as it is (README: deviations)
        return None
    return ftfy


def clean(caption: str) -> str:
    """Card step 1: URL-unquote, '+' -> space, strip HTML tags (and unescape entities), collapse all whitespace,
    fix mojibake with ftfy when installed (skipped otherwise), lowercase."""
    text = urllib.parse.unquote(str(caption)).replace("+", " ")
    text = html.unescape(_HTML.sub(" ", text))
    text = _SPACE.sub(" ", text).strip()
    fixer = _ftfy()
    return (fixer.fix_text(text) if fixer is not None else text).lower()


def synset_key(lemma: str) -> str:
    """'n' + the lemma's first noun sense offset (upstream's pos-offset key)."""
    return f"n{NOUN_OFFSETS[lemma]}"


LEMMA_OF_KEY = {synset_key(lemma): lemma for lemma in NOUN_OFFSETS}


def lemmatize(word: str) -> str:
    """A word's noun lemma through the table: itself when known, else an irregular plural, else -ies/-es/-s
    stripped when that gives a known noun; unknown words are returned unchanged."""
    if word in NOUN_OFFSETS or word in OTHER_POS:
        return word
    if word in IRREGULAR_PLURALS:
        return IRREGULAR_PLURALS[word]
    for suffix, repl in (("ies", "y"), ("es", ""), ("s", "")):
        if word.endswith(suffix) and word[: -len(suffix)] + repl in NOUN_OFFSETS:
            return word[: -len(suffix)] + repl
    return word


def parts_of_speech(lemma: str) -> tuple[str, ...]:
    return (("noun",) if lemma in NOUN_OFFSETS else ()) + OTHER_POS.get(lemma, ())


def tag(lemmas: Sequence[str]) -> list[str]:
    """A small rule tagger over lemmas: an adjective before a noun or after a copula is an adjective, a verb after
    'to' or opening the caption is a verb, else a word that can be a noun is a noun; unknown words are 'x'."""
    tags = []
    for i, w in enumerate(lemmas):
        pos = parts_of_speech(w)
        after = parts_of_speech(lemmas[i + 1]) if i + 1 < len(lemmas) else ()
        before = lemmas[i - 1] if i else ""
        if "adj" in pos and ("noun" in after or before in COPULAS):
            tags.append("adj")
        elif "verb" in pos and (before == "to" or i == 0):
            tags.append("verb")
        elif "noun" in pos:
            tags.append("noun")
        else:
            tags.append(pos[0] if pos else "x")
    return tags


def caption_synsets(caption: str, respect_pos: bool = True) -> list[str]:
    """The card's interface: caption -> noun synset keys (each once, in caption order). `respect_pos=False` is
    upstream's behaviour: every word with a noun sense becomes a label whatever its tag."""
    lemmas = [lemmatize(w) for w in words(clean(caption))]
    tags = tag(lemmas) if respect_pos else ["noun"] * len(lemmas)
    keys = [synset_key(w) for w, t in zip(lemmas, tags) if t == "noun" and w in NOUN_OFFSETS]
    return list(dict.fromkeys(keys))


def build_vocabulary(captions: Iterable[str], size: int, respect_pos: bool = True) -> list[str]:
    """The top-`size` synset keys by the number of captions naming them (ties by key): the V classes."""
    if size < 1:
        raise ValueError(f"vocabulary size {size} must be >= 1")
    counts = Counter(k for c in captions for k in caption_synsets(c, respect_pos))
    return [k for k, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:size]]


class Labeller:
    """Captions -> vocabulary indices and multi-hot targets over a fixed vocabulary (a dict lookup per word)."""

    def __init__(self, vocabulary: Sequence[str], respect_pos: bool = True) -> None:
        if not vocabulary or len(set(vocabulary)) != len(vocabulary):
            raise ValueError("the vocabulary must be a non-empty list of distinct synset keys")
        self.vocabulary = list(vocabulary)
        self.index = {k: i for i, k in enumerate(self.vocabulary)}
        self.respect_pos = respect_pos

    def __len__(self) -> int:
        return len(self.vocabulary)

    def labels(self, caption: str) -> list[int]:
        return [self.index[k] for k in caption_synsets(caption, self.respect_pos) if k in self.index]

    def targets(self, captions: Sequence[str]) -> np.ndarray:
        """(N, V) float32 multi-hot; a caption without a vocabulary noun is an all-zero row."""
        out = np.zeros((len(captions), len(self)), np.float32)
        for i, c in enumerate(captions):
            out[i, self.labels(c)] = 1.0
        return out

    def row_of(self, lemma: str) -> int | None:
        """The vocabulary index of a lemma's synset (None when it is not in the vocabulary)."""
        return self.index.get(synset_key(lemma)) if lemma in NOUN_OFFSETS else None
