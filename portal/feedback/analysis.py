"""NPS categories and score, and the themes of free-text comments: pure, no Flask, no database."""
from __future__ import annotations

import re
from collections import Counter
from typing import Iterable

DETRACTOR_MAX, PASSIVE_MAX = 6, 8
WORD = re.compile(r"[a-z][a-z'-]*[a-z]|[a-z]")
STOP_WORDS = frozenset("""
a about above after again against all also am an and any are as at be because been before being below between
both but by can could did do does doing don't down during each few for from further get got had has have having
he her here hers him his how i i'm if in into is it it's its itself just me more most my no nor not now of off on
once only or other our ours out over own same she should so some such than that the their theirs them then there
these they this those through to too under until up very was we were what when where which while who whom why
will with would you your yours yourself really much many one thing things lot bit still even well
""".split())


def category(nps: int) -> str:
    if nps <= DETRACTOR_MAX:
        return "detractor"
    return "passive" if nps <= PASSIVE_MAX else "promoter"


def nps_score(promoters: int, passives: int, detractors: int) -> int | None:
    """Share of promoters minus share of detractors, -100..100, rounded; None without answers."""
    total = promoters + passives + detractors
    return round(100 * (promoters - detractors) / total) if total else None


def words(text: str) -> list[str | None]:
    """The comment's words in order, None in place of each stop word (so phrases never bridge one)."""
    return [word if word not in STOP_WORDS and len(word) > 2 else None for word in WORD.findall(text.lower())]


def themes(comments: Iterable[str], top: int = 15) -> list[tuple[str, int]]:
    """The words and two-word phrases most comments mention (each comment counts once per phrase), most first.
    A phrase needs two comments; a word is left out when a phrase holding it is mentioned as often (the phrase
    says more)."""
    counts: Counter[str] = Counter()
    for comment, times in Counter(comments).items():  # many answers repeat a comment word for word: split it once
        tokens = words(comment)
        phrases = {f"{a} {b}" for a, b in zip(tokens, tokens[1:]) if a and b}
        counts.update(dict.fromkeys({token for token in tokens if token} | phrases, times))
    phrases = [phrase for phrase, count in counts.items() if " " in phrase and count >= 2]
    covered = {word for phrase in phrases for word in phrase.split() if counts[word] == counts[phrase]}
    ranked = [(phrase, counts[phrase]) for phrase in phrases]
    ranked += [(word, count) for word, count in counts.items() if " " not in word and word not in covered]
    ranked.sort(key=lambda item: (-item[1], item[0]))
    return ranked[:top]
