"""Forms of the admin pages. The rules the portal shares with the CLI stay in the services."""
from __future__ import annotations


from flask_wtf import FlaskForm
from wtforms import DecimalField, EmailField, IntegerField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, StopValidation, ValidationError
from wtforms.widgets import NumberInput

from .. import validation
from ..health import settings
from ..health.metrics import label
from ..models import ROLES
from .team import MIN_PASSWORD

ROLE_CHOICES = [SelectChoice(role, label(role)) for role in ROLES]


class Points:
    """A weight: finite, between 0 and maximum, at most two decimal places (the column's precision)."""

    def __init__(self, maximum: int):
        self.maximum = maximum

    def __call__(self, form, field):
        value = field.data
        if value is None:  # not a number: the field already says so
            raise StopValidation()
        if not value.is_finite():
            raise ValidationError("Enter a number.")
        if value < 0 or value > self.maximum:
            raise ValidationError(f"Enter a number from 0 to {self.maximum}.")
        if value.as_tuple().exponent < -2:
            raise ValidationError("Use at most two decimal places.")


class Between:
    def __init__(self, minimum: int, maximum: int):
        self.minimum, self.maximum = minimum, maximum

    def __call__(self, form, field):
        if field.data is None:
            raise StopValidation()
        if not self.minimum <= field.data <= self.maximum:
            raise ValidationError(f"Enter a whole number from {self.minimum} to {self.maximum}.")


def portal_setting(form, field):
    """The portal settings' own parsers (portal.health.settings) decide, so the page and the service agree."""
    try:
        settings.SETTINGS[field.short_name][1](field.data or "")
    except validation.ValidationError as error:
        raise ValidationError(str(error).replace(field.short_name, label(field.short_name), 1) + ".") from None


def weight(text: str, hint: str, maximum: int = 100) -> DecimalField:
    return DecimalField(text, places=None, validators=[InputRequired(), Points(maximum)], description=hint,
                        widget=NumberInput(step="0.01", min=0, max=maximum))


def band(text: str, hint: str) -> IntegerField:
    return IntegerField(text, validators=[InputRequired(), Between(1, 100)], description=hint,
                        widget=NumberInput(min=1, max=100))


class SettingsForm(FlaskForm):
    onboarding_weight = weight("Onboarding points", "Points for a complete onboarding; partial onboarding earns its share.")
    activity_per_day = weight("Activity points per active day", "Each day with any engagement inside the window.")
    activity_max = weight("Activity points at most", "The cap of the activity component.")
    success_weight = weight("Success points per merged percent",
                            "Times the merged rate: 0.25 turns 100% merged into 25 points.", maximum=1)
    volume_per_pr = weight("Volume points per PR generated", "Each pull request the Action opened, all time.")
    volume_max = weight("Volume points at most", "The cap of the volume component.")
    champion_min = band("Champion from", "Lowest score of a champion.")
    healthy_min = band("Healthy from", "Lowest score of a healthy customer; below the champion band.")
    needs_attention_min = band("Needs attention from", "Below it a customer is at risk.")
    window_days = IntegerField("Activity window (days)", validators=[InputRequired(), Between(1, 365)],
                               description="Today and the days before it that count as active days.",
                               widget=NumberInput(min=1, max=365))
    trigger_label = StringField("GitHub trigger label", validators=[InputRequired(), portal_setting],
                                description="The issue label that asks the Action for a fix.")
    pr_branch_prefix = StringField("PR branch prefix", validators=[InputRequired(), portal_setting],
                                   description="How the Action's pull-request branches begin.")
    reengagement_days = StringField("Re-engagement after (days)", validators=[InputRequired(), portal_setting],
                                    description="Days without activity before a re-engagement email.",
                                    widget=NumberInput(min=1))

    risk_inactive_days = StringField("No Action activity for (days)", validators=[InputRequired(), portal_setting],
                                     description="Days without an issue tagged or a PR generated before the signal.",
                                     widget=NumberInput(min=1))
    risk_rejection_percent = StringField("Rejected PRs, last 14 days (%)", validators=[InputRequired(), portal_setting],
                                         description="Share of closed PRs rejected, and rising, before the signal.",
                                         widget=NumberInput(min=1, max=100))
    risk_blocker_days = StringField("Blocker open for (days)", validators=[InputRequired(), portal_setting],
                                    description="Days a blocker may stay open before the signal.",
                                    widget=NumberInput(min=1))

    playbook_daily_cap = StringField("Playbook tasks per owner a day", validators=[InputRequired(), portal_setting],
                                     description="Above it, playbooks skip that owner's customers for the day.",
                                     widget=NumberInput(min=1))

    erase_churned_after_days = StringField("Erase churned customers after (days)",
                                           validators=[InputRequired(), portal_setting], widget=NumberInput(min=0),
                                           description="Their personal data, that many days after they churned; "
                                                       "0 keeps it.")

    # The page's groups, in order.
    WEIGHTS = ("onboarding_weight", "activity_per_day", "activity_max", "success_weight", "volume_per_pr", "volume_max")
    BANDS = ("champion_min", "healthy_min", "needs_attention_min", "window_days")
    PORTAL = ("trigger_label", "pr_branch_prefix", "reengagement_days")
    RISK = ("risk_inactive_days", "risk_rejection_percent", "risk_blocker_days")
    PLAYBOOKS = ("playbook_daily_cap",)
    PRIVACY = ("erase_churned_after_days",)

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        champion, healthy, attention = self.champion_min, self.healthy_min, self.needs_attention_min
        if None not in (champion.data, healthy.data) and not healthy.errors and healthy.data >= champion.data:
            healthy.errors.append(f"Must be below the champion band ({champion.data}).")
            valid = False
        if None not in (healthy.data, attention.data) and not attention.errors and attention.data >= healthy.data:
            attention.errors.append(f"Must be below the healthy band ({healthy.data}).")
            valid = False
        return valid

    def values(self) -> dict:
        return {name: self[name].data for name in (*self.WEIGHTS, *self.BANDS, *self.PORTAL, *self.RISK, *self.PLAYBOOKS,
                                                     *self.PRIVACY)}


class MemberForm(FlaskForm):
    name = StringField("Name", validators=[InputRequired(), Length(max=120)])
    email = EmailField("Email", validators=[InputRequired(), Length(max=254)])
    role = SelectField("Role", choices=ROLE_CHOICES, default="member")
    password = PasswordField(f"Password (at least {MIN_PASSWORD} characters)",
                             validators=[InputRequired(), Length(max=200)],
                             render_kw={"minlength": MIN_PASSWORD, "autocomplete": "new-password"})


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=ROLE_CHOICES)


class ActiveForm(FlaskForm):
    active = SelectField("Active", choices=[SelectChoice("true", "Active"), SelectChoice("false", "Deactivated")])
