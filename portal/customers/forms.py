"""Forms of the customer pages; the values are checked again by the service, which has the last word."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import DateField, EmailField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Email, InputRequired, Length, NumberRange, Optional
from wtforms.validators import ValidationError as FieldError

from .. import clock, validation
from ..health.metrics import BLOCKER_TYPES, label
from ..models import FEEDBACK_SOURCES
from ..validation import MAX_TEAM_SIZE, ValidationError


class Within:
    """A date field's check by one of validation's date windows (recorded_date, due_date), from today."""

    def __init__(self, window):
        self.window = window

    def __call__(self, form, field) -> None:
        if field.data is None:
            return
        try:
            self.window(field.data, field.label.text, clock.today())
        except ValidationError as error:
            raise FieldError(str(error)) from None


def team_choices(team) -> dict[str, str]:
    """Select options (WTForms' value: label shorthand) for choosing a team member, or nobody."""
    return {"": "— nobody —", **{str(user.id): user.name for user in team}}


class ServiceErrors:
    """Put a service's ValidationError next to the field it names (or at the top of the form)."""

    def add_error(self, error: ValidationError) -> None:
        field = getattr(self, error.field, None) if error.field else None
        if field is None:
            self.form_errors.append(str(error))
        else:
            field.errors = [*field.errors, str(error)]


class NewCustomerForm(ServiceErrors, FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Email(), Length(max=254)])
    organization = StringField("Organization", validators=[DataRequired(), Length(max=200)])
    github_username = StringField("GitHub login", validators=[DataRequired(), Length(max=39)])
    cohort = StringField("Cohort", validators=[Length(max=50)])
    industry = StringField("Industry", validators=[Length(max=100)])
    team_size = IntegerField("Team size", default=1, validators=[InputRequired(), NumberRange(min=1, max=MAX_TEAM_SIZE)])
    owner = SelectField("Owner", choices={}, validate_choice=False)
    signup_date = DateField("Signup date", validators=[Optional(), Within(validation.recorded_date)])

    def fields(self) -> dict[str, str]:
        return {name: str(getattr(self, name).data or "") for name in
                ("email", "organization", "github_username", "cohort", "industry", "team_size")}


class DetailsForm(ServiceErrors, FlaskForm):
    blocker_type = SelectField("Blocker", choices={value: label(value) for value in BLOCKER_TYPES})
    notes = TextAreaField("Notes", validators=[Length(max=10_000)])


class InterventionForm(ServiceErrors, FlaskForm):
    kind = SelectField("Kind", choices={"note": "Note", "call": "Call", "task": "Task"})
    title = StringField("Title", validators=[DataRequired(), Length(max=200)])
    body = TextAreaField("Details", validators=[Length(max=10_000)])
    due_date = DateField("Due", validators=[Optional(), Within(validation.due_date)])
    assignee = SelectField("Assignee", choices={}, validate_choice=False)


class FeedbackForm(ServiceErrors, FlaskForm):
    nps = IntegerField("NPS (0-10)", validators=[Optional(), NumberRange(min=0, max=10)])
    csat = IntegerField("CSAT (1-5)", validators=[Optional(), NumberRange(min=1, max=5)])
    comment = TextAreaField("Comment", validators=[Length(max=10_000)])
    feature_request = TextAreaField("Feature request", validators=[Length(max=10_000)])
    bug_report = TextAreaField("Bug report", validators=[Length(max=10_000)])
    source = SelectField("Source", choices={value: label(value) for value in FEEDBACK_SOURCES}, default="call")
