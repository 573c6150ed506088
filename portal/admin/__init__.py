"""Administration, for admins only: the health and portal settings, and the team who sign in.

The routes live in views.py; the factory imports it to register this blueprint.
"""
from flask import Blueprint

bp = Blueprint("admin", __name__)
