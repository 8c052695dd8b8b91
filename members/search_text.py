"""How member names are folded for search: one normalisation for the index and the query.

Case-folded and stripped of accents in Python, so SQLite and PostgreSQL search
the same text and agree on every result. The three names are kept apart by a
separator, which lets one index answer exact ("the whole name"), prefix and
substring questions.
"""

from __future__ import annotations

import unicodedata

# Unit separator: never typed into a name, and not a letter for any tokenizer.
SEP = "\x1f"


def fold(text: str) -> str:
    """Case-folded, accents removed, full-width and other compatibility forms unified."""
    if text.isascii():
        # Most names: for ASCII, casefold is lower and both normalisations change nothing,
        # and a sync folds three names of every member it writes.
        return text.lower().replace(SEP, " ")
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return unicodedata.normalize("NFC", stripped).replace(SEP, " ")


def search_fields(username: str, global_name: str | None, nick: str | None, display_name: str) -> tuple[str, str]:
    """(search_text, sort_key) for a member's names."""
    names = [fold(username), fold(global_name or ""), fold(nick or "")]
    return SEP + SEP.join(names) + SEP, fold(display_name)[:100]
