"""The SPEC section 3 formulas, at every edge."""
import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given, strategies as st
from portal.health import metrics
from portal.health.metrics import Weights

ALL_DONE = dict.fromkeys(metrics.STEPS, True)
NONE_DONE = dict.fromkeys(metrics.STEPS, False)


def steps(*done):
    return {step: step in done for step in metrics.STEPS}


@pytest.mark.parametrize("done, percent", [(0, 0), (1, 20), (2, 40), (3, 60), (4, 80), (5, 100)])
def test_onboarding_percent(done, percent):
    assert metrics.onboarding_percent(done) == percent


@pytest.mark.parametrize(
    "merged, generated, rate",
    [(0, 0, 0), (5, 0, 0), (1, 3, 33), (2, 3, 66), (3, 3, 100), (0, 7, 0), (199, 200, 99)],
)
def test_success_rate_truncates_and_is_zero_without_prs(merged, generated, rate):
    assert metrics.success_rate(merged, generated) == rate


def test_days_active_counts_distinct_dates_inside_the_window_only():
    today = dt.date(2026, 3, 31)
    dates = [today, today, today - dt.timedelta(days=29), today - dt.timedelta(days=30), today + dt.timedelta(days=1)]
    assert metrics.days_active(dates, today, 30) == 2
    assert metrics.window_start(today, 30) == dt.date(2026, 3, 2)


@pytest.mark.parametrize(
    "steps_done, days, generated, merged, expected",
    [
        # onboarding 30 + activity 30 + success 25 + volume 15
        (5, 6, 8, 8, (100, "champion")),
        # activity saturates at 6 days and volume at 8 PRs: more adds nothing
        (5, 30, 500, 500, (100, "champion")),
        (0, 0, 0, 0, (0, "at_risk")),
        # no PRs: success 0, volume 0
        (5, 2, 0, 0, (40, "at_risk")),
        # 1 step = 20% x 0.3 = 6 exactly, not 5.999...
        (1, 0, 0, 0, (6, "at_risk")),
        # 4 steps: 80 x 0.3 = 24; 1/3 merged = 33% x 0.25 = 8.25; 3 PRs = 6 -> 38.25 truncated
        (4, 0, 3, 1, (38, "at_risk")),
    ],
)
def test_health_score(steps_done, days, generated, merged, expected):
    result = metrics.health(steps_done, days, generated, merged)
    assert (result.score, result.status) == expected


@pytest.mark.parametrize(
    "score, status",
    [(100, "champion"), (85, "champion"), (84, "healthy"), (70, "healthy"), (69, "needs_attention"),
     (50, "needs_attention"), (49, "at_risk"), (0, "at_risk")],
)
def test_band_edges(score, status):
    assert metrics.health_status(score) == status


@pytest.mark.parametrize(
    "steps_done, days, generated, merged, score",
    [
        (5, 5, 4, 2, 30 + 25 + 12 + 8),         # 50% -> 12.5: 75.5 -> 75
        (5, 4, 2, 1, 30 + 20 + 12 + 4),         # 66.5 -> 66
        (5, 6, 7, 7, 30 + 30 + 25 + 14),        # 99
        (3, 1, 3, 2, 18 + 5 + 16 + 6),          # 66% -> 16.5: 45.5 -> 45
    ],
)
def test_score_is_the_truncated_sum(steps_done, days, generated, merged, score):
    assert metrics.health(steps_done, days, generated, merged).score == score


@pytest.mark.parametrize(
    "steps_done, days, generated, merged, score, status",
    [
        (5, 6, 10, 4, 85, "champion"),          # 30 + 30 + 40% x 0.25 = 10 + 15
        (5, 6, 25, 9, 84, "healthy"),           # 30 + 30 + 36% -> 9 + 15
        (5, 6, 100, 39, 84, "healthy"),         # 84.75 truncates to 84, not 85
        (5, 5, 10, 0, 70, "healthy"),           # 30 + 25 + 0 + 15
        (5, 4, 25, 4, 69, "needs_attention"),   # 30 + 20 + 16% -> 4 + 15
        (5, 4, 0, 0, 50, "needs_attention"),    # 30 + 20
        (4, 5, 0, 0, 49, "at_risk"),            # 80% x 0.3 = 24 + 25
    ],
)
def test_band_edges_through_the_whole_formula(steps_done, days, generated, merged, score, status):
    result = metrics.health(steps_done, days, generated, merged)
    assert (result.score, result.status) == (score, status)


def test_custom_weights_and_bands():
    weights = Weights(onboarding_weight=Decimal("40"), champion_min=90, healthy_min=60, needs_attention_min=30)
    result = metrics.health(5, 0, 0, 0, weights)
    assert (result.score, result.status) == (40, "needs_attention")


def test_score_is_clamped_to_100_with_generous_weights():
    weights = Weights(onboarding_weight=Decimal("60"), volume_max=Decimal("60"), volume_per_pr=Decimal("10"))
    assert metrics.health(5, 10, 10, 10, weights).score == 100


@given(
    steps_done=st.integers(0, 5),
    days=st.integers(0, 60),
    generated=st.integers(0, 10_000),
    merged_share=st.floats(0, 1),
)
def test_score_in_range_and_equal_to_truncated_sum_of_components(steps_done, days, generated, merged_share):
    merged = int(generated * merged_share)
    result = metrics.health(steps_done, days, generated, merged)
    total = result.onboarding + result.activity + result.success + result.volume
    assert 0 <= result.score <= 100
    assert result.score == int(total)
    assert result.activity <= 30 and result.volume <= 15 and result.success <= 25 and result.onboarding <= 30
    assert result.status == metrics.health_status(result.score)


@pytest.mark.parametrize(
    "done, status, stage",
    [
        ((), "active", "new_signup"),
        (("welcome_email_sent",), "active", "new_signup"),
        (("account_created",), "active", "onboarding"),
        (("github_action_installed",), "active", "onboarding"),
        (("first_issue_tagged",), "active", "initial_adoption"),
        (metrics.STEPS, "active", "regular_usage"),
        (metrics.STEPS, "churned", "churned"),
        ((), "churned", "churned"),
        ((), "paused", "new_signup"),
    ],
)
def test_lifecycle_stage(done, status, stage):
    assert metrics.lifecycle_stage(steps(*done), status) == stage


def test_days_to_complete():
    assert metrics.days_to_complete(dt.date(2026, 1, 1), dt.date(2026, 1, 15)) == 14
    assert metrics.is_complete(ALL_DONE) and not metrics.is_complete(NONE_DONE)


def test_metrics_module_has_no_flask():
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(metrics))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert not any(name.startswith(("flask", "sqlalchemy")) for name in imported)


@pytest.mark.parametrize("value, text", [("first_pr_generated", "First PR generated"), ("github_config", "GitHub config"),
                                         ("at_risk", "At risk"), ("", "")])
def test_label(value, text):
    assert metrics.label(value) == text

