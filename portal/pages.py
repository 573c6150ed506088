"""How a view answers htmx: the piece it swaps, or the whole page for everything else."""
from __future__ import annotations

from flask import render_template

from .extensions import htmx


def wants_fragment() -> bool:
    """An htmx request for a piece of a page; boosted navigation and history restores want the whole page."""
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request


def fragment_or_page(partial: str, whole: str, **context):
    response = render_template(partial if wants_fragment() else whole, **context)
    return response, 200, {"Vary": "HX-Request"}
