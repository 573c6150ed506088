"""The playbook form: its condition and its three steps (a task, an optional note, an optional email)."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from ..customers.forms import ServiceErrors
from ..health.metrics import STAGES, STATUSES, label
from ..models import Playbook
from ..health.risk import KINDS, TITLES
from . import rules

HINT = "Placeholders: " + ", ".join("{" + name + "}" for name in rules.PLACEHOLDERS)


def placeholders(form, field):
    try:
        unknown = rules.unknown_placeholders(field.data or "")
    except ValueError:
        raise ValidationError("A brace { or } is not closed: write {{ or }} for a brace itself.") from None
    if unknown:
        raise ValidationError(f"Unknown placeholder {{{unknown[0]}}}. {HINT}.")


def checkboxes(text: str, values: tuple[str, ...]) -> SelectMultipleField:
    return SelectMultipleField(text, choices=[SelectChoice(value, label(value)) for value in values],
                               widget=ListWidget(prefix_label=False), option_widget=CheckboxInput())


def days(text: str) -> IntegerField:
    return IntegerField(text, validators=[Optional(), NumberRange(min=0, max=3650)])


class PlaybookForm(ServiceErrors, FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=120)])
    description = TextAreaField("Description", validators=[Length(max=2000)])
    active = BooleanField("Active: the daily job starts it", default=True)
    bands = checkboxes("Health band (any when none is ticked)", STATUSES)
    stages = checkboxes("Stage (any when none is ticked)", STAGES)
    cohorts = StringField("Cohorts, comma separated (any when empty)", validators=[Length(max=200)])
    signal = SelectField("Risk signal", choices=[SelectChoice("", "— any or none —")] + [SelectChoice(kind, TITLES[kind]) for kind in KINDS])
    min_days = days("At least this many days since signup")
    max_days = days("At most this many days since signup")
    task_title = StringField("Task title", validators=[DataRequired(), Length(max=200), placeholders])
    task_due_days = IntegerField("Task due in (days)", default=2, validators=[InputRequired(), NumberRange(min=0, max=90)])
    task_body = TextAreaField("Task details", validators=[Length(max=5000), placeholders])
    note_text = TextAreaField("Note (optional)", validators=[Length(max=5000), placeholders])
    email_subject = StringField("Email subject (optional)", validators=[Length(max=200), placeholders])
    email_text = TextAreaField("Email text", validators=[Length(max=10_000), placeholders])

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        low, high = self.min_days, self.max_days
        if None not in (low.data, high.data) and not high.errors and high.data < low.data:
            high.errors.append("Must be at least the minimum.")
            valid = False
        subject, text = (self.email_subject.data or "").strip(), (self.email_text.data or "").strip()
        if bool(subject) != bool(text) and not (self.email_subject.errors or self.email_text.errors):
            (self.email_text if subject else self.email_subject).errors.append("An email needs a subject and a text.")
            valid = False
        return valid

    def values(self) -> dict:
        """The playbook's columns; the task is always the first step."""
        steps = [{"kind": "task", "title": self.task_title.data.strip(), "due_days": self.task_due_days.data,
                  "body": (self.task_body.data or "").strip()}]
        if (self.note_text.data or "").strip():
            steps.append({"kind": "note", "text": self.note_text.data.strip()})
        if (self.email_subject.data or "").strip():
            steps.append({"kind": "email", "subject": self.email_subject.data.strip(),
                          "text": self.email_text.data.strip()})
        cohorts = [cohort.strip() for cohort in (self.cohorts.data or "").split(",") if cohort.strip()]
        condition = {"bands": self.bands.data or [], "stages": self.stages.data or [], "cohorts": cohorts,
                     "signal": self.signal.data or None, "min_days": self.min_days.data, "max_days": self.max_days.data}
        return {"name": self.name.data.strip(), "description": (self.description.data or "").strip(),
                "active": bool(self.active.data), "condition": condition, "steps": steps}

    @staticmethod
    def data_of(playbook: Playbook) -> dict:
        condition = playbook.condition or {}
        steps = {step["kind"]: step for step in playbook.steps}
        task, note, email = steps.get("task", {}), steps.get("note", {}), steps.get("email", {})
        return {"name": playbook.name, "description": playbook.description, "active": playbook.active,
                "bands": condition.get("bands", []), "stages": condition.get("stages", []),
                "cohorts": ", ".join(condition.get("cohorts", [])), "signal": condition.get("signal") or "",
                "min_days": condition.get("min_days"), "max_days": condition.get("max_days"),
                "task_title": task.get("title", ""), "task_due_days": task.get("due_days", 2),
                "task_body": task.get("body", ""), "note_text": note.get("text", ""),
                "email_subject": email.get("subject", ""), "email_text": email.get("text", "")}
