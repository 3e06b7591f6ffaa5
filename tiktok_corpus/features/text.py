"""``text``: the caption and hashtags as a TF-IDF fitted on the train split only, reduced by
TruncatedSVD; and their length and counts of hashtags, mentions and emoji.

Fitting on train rows alone keeps val/test words out of the vocabulary: a word that only a test
caption uses gets no column and no weight.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import regex
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer

from .columns import hashtag_names, named, text

# 2: Chinese and Japanese characters are tokens of their own.
# 3: words keep their combining marks (Hindi, Bengali, Tamil...), Thai, Lao, Khmer and Myanmar are cut into
#    grapheme clusters, an emoji is one however many code points draw it, an e-mail address no mention.
VERSION = 3
MIN_DOCUMENT_FREQUENCY = 2  # a word in one train caption only is noise to a model, not a feature
# Chinese and Japanese write no spaces: scikit-learn's default token (two word characters or more between
# word boundaries) made each caption one word of its own, which min_df then dropped - no text feature at
# all. Each Han or kana character is a token (not the katakana middle dot and long-vowel mark, which are
# no words); other words are runs of two word characters or more, which a Han or kana character ends too
# ("vlog今天", "今日はTikTok"). Thai, Lao, Khmer and Myanmar write no spaces either, and their letters
# are no morphemes: each grapheme cluster (a letter with its vowel and tone marks) is a token. Words are
# read by the ``regex`` package, whose word characters include combining marks: Python's ``re`` cut
# "दोस्तों" at each vowel sign and virama, and a Hindi caption kept one word in three.
_CJK = "\u3040-\u30fa\u30fd-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_SPACELESS = r"\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}"
# Marks that draw an emoji, no word: its variation selectors, the zero-width joiners, the keycap ("❤️love").
_EMOJI_MARKS = "\ufe00-\ufe0f\U000e0100-\U000e01ef\u200c\u200d\u20e3"
TOKEN = regex.compile(rf"[{_CJK}]|(?=[{_SPACELESS}])\X|[^\W{_CJK}{_SPACELESS}{_EMOJI_MARKS}\u30fb\u30fc]{{2,}}")
MENTION = r"(?<![\w.])@[\w.]+"  # not the @ of an e-mail address
# An emoji is a grapheme cluster drawn as one (a skin tone, a ZWJ family, a flag's two letters): one that
# holds a code point shown as emoji by default, the emoji variation selector, a regional indicator, or a
# symbol or dingbat (U+2600-27BF: a bare ❤ or ★, which captions use as emoji).
_GRAPHEME = regex.compile(r"\X")
_DRAWN_AS_EMOJI = regex.compile(r"\p{Emoji_Presentation}|\uFE0F|\p{Regional_Indicator}|[\u2600-\u27bf]")


def words(document: str) -> list[str]:
    """The tokens of one (lower-cased) document, by :data:`TOKEN`."""
    return TOKEN.findall(document)


def emoji_count(caption: str) -> int:
    return sum(1 for cluster in _GRAPHEME.findall(caption) if _DRAWN_AS_EMOJI.search(cluster))


def settings(options) -> dict:
    return {"version": VERSION, "components": options.text_components}


def documents(table: pd.DataFrame) -> pd.Series:
    """Each row's caption followed by its hashtags (already in most captions; tags-only rows have none)."""
    tags = table["hashtags"] if "hashtags" in table else pd.Series([None] * len(table), index=table.index)
    return text(table, "desc") + " " + tags.map(lambda v: " ".join(hashtag_names(v)))


@dataclass
class TextModel:
    """The train split's vocabulary and its SVD; ``None`` parts when the train captions have no words."""

    vectorizer: TfidfVectorizer | None
    svd: TruncatedSVD | None
    components: int

    def transform(self, docs: pd.Series) -> np.ndarray:
        reduced = np.zeros((len(docs), self.components))
        if self.vectorizer is not None and self.svd is not None:
            weights = self.svd.transform(self.vectorizer.transform(docs))
            reduced[:, : weights.shape[1]] = weights  # a vocabulary smaller than --text-components pads zeros
        return reduced


def fit_text(train_docs: pd.Series, components: int) -> TextModel:
    """TF-IDF then TruncatedSVD, both fitted on ``train_docs`` (the train split) only."""
    vectorizer = TfidfVectorizer(sublinear_tf=True, min_df=MIN_DOCUMENT_FREQUENCY, tokenizer=words, token_pattern=None)
    try:
        weights = vectorizer.fit_transform(train_docs)
    except ValueError:  # no word occurs twice in the train captions: an empty vocabulary
        return TextModel(None, None, components)
    if weights.shape[1] < 2:
        return TextModel(None, None, components)
    svd = TruncatedSVD(n_components=min(components, weights.shape[1] - 1), random_state=0)
    svd.fit(weights)
    return TextModel(vectorizer, svd, components)


def text_features(table: pd.DataFrame, components: int) -> pd.DataFrame:
    """``svd_0..svd_{components-1}`` of the train-fitted TF-IDF, then caption length and counts."""
    docs = documents(table)
    model = fit_text(docs[table["split"] == "train"], components)
    reduced = pd.DataFrame(model.transform(docs), columns=[f"svd_{i}" for i in range(components)])
    caption = text(table, "desc").reset_index(drop=True)
    tags = table["hashtags"] if "hashtags" in table else pd.Series([None] * len(table))
    counts = pd.DataFrame(
        {
            "caption_chars": caption.str.len(),
            "caption_words": caption.str.count(r"\S+"),
            "hashtag_count": [len(hashtag_names(v)) for v in tags],
            "mention_count": caption.str.count(MENTION),
            "emoji_count": caption.map(emoji_count),
        }
    )
    return named(pd.concat([reduced, counts], axis=1), "text")


def compute(export, options, advance: Callable[[int], None]) -> pd.DataFrame:
    frame = text_features(export.table, options.text_components)
    advance(len(frame))
    return frame
