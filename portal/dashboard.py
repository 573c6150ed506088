"""The dashboard: KPIs, stages, health bands and who is at risk."""
from flask import Blueprint, render_template
from flask_login import login_required

from . import analytics, metrics

bp = Blueprint("dashboard", __name__)


@bp.get("/")
@login_required
def index():
    return render_template("dashboard/index.html", board=analytics.dashboard(), steps=metrics.STEPS)
