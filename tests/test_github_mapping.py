"""The pure mapping of GitHub deliveries to effects, with real payloads (tests/fixtures/github, from octokit/webhooks)."""
import copy
import datetime as dt
import json
from pathlib import Path

import pytest

from portal.integrations import github, payloads
from portal.validation import ValidationError

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "github"
SETTINGS = {"trigger_label": "bug", "pr_branch_prefix": "changes"}
UTC = dt.timezone.utc


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def effect(name: str, settings=SETTINGS, **changes) -> github.Effect:
    payload = fixture(name)
    for path, value in changes.items():
        *parents, last = path.split("__")
        target = payload
        for key in parents:
            target = target[key]
        target[last] = value
    return github.effect_of(name.split(".")[0], payload, settings)


def test_installation_created_ticks_the_step_at_the_installation_time():
    result = effect("installation.created.json")
    assert (result.kind, result.step, result.logins) == ("apply", "github_action_installed", ("codertocat",))
    assert result.when == dt.datetime.fromtimestamp(1557933591, UTC)
    assert result.counts == {}


def test_installation_created_without_a_time_is_ticked_when_applied():
    payload = fixture("installation.created.json")
    del payload["installation"]["created_at"]
    assert github.effect_of("installation", payload, SETTINGS).when is None


@pytest.mark.parametrize("name", ["installation.deleted.json", "installation_repositories.added.json"])
def test_recorded_only(name):
    result = effect(name)
    assert result.kind == "record" and result.step is None and not result.counts


def test_issue_labeled_with_the_trigger_label_counts_on_its_own_day():
    result = effect("issues.labeled.json")
    assert result.counts == {"issues_tagged": 1}
    assert result.day == dt.date(2019, 5, 15)
    assert result.step == "first_issue_tagged"
    assert result.when == dt.datetime(2019, 5, 15, 15, 20, 18, tzinfo=UTC)


def test_the_organization_comes_before_the_repository_owner():
    assert effect("issues.labeled.with-organization.json").logins == ("octocoders", "codertocat")


def test_installation_account_comes_first():
    payload = fixture("issues.labeled.json")
    payload["installation"] = {"account": {"login": "Installer"}}
    assert github.logins(payload) == ("installer", "codertocat")


def test_logins_that_are_not_github_logins_are_skipped():
    payload = {"organization": {"login": "bad login\x00"}, "repository": {"owner": {"login": 42}}}
    assert github.logins(payload) == ()


@pytest.mark.parametrize("name, settings", [
    ("issues.labeled.json", {**SETTINGS, "trigger_label": "rsolv"}),
    ("issues.opened.json", SETTINGS),
    ("issues.unlabeled.json", SETTINGS),
    ("pull_request.labeled.json", SETTINGS),
    ("pull_request.opened.json", {**SETTINGS, "pr_branch_prefix": "rsolv/"}),
    ("pull_request.closed.json", {**SETTINGS, "pr_branch_prefix": "rsolv/"}),
    ("workflow_run.completed.json", SETTINGS),
    ("installation.created.json", SETTINGS),
])
def test_ignored(name, settings):
    payload = fixture(name)
    if name == "installation.created.json":
        payload["action"] = "suspend"
    assert github.effect_of(name.split(".")[0], payload, settings).kind == "ignored"


@pytest.mark.parametrize("name", ["pull_request.opened.json", "pull_request.opened.with-null-body.json"])
def test_pr_opened_by_the_action(name):
    result = effect(name)
    assert result.counts == {"prs_generated": 1} and result.step == "first_pr_generated"
    assert result.day == dt.date(2019, 5, 15)


def test_closed_unmerged_counts_rejected_on_the_closing_day():
    result = effect("pull_request.closed.json", pull_request__closed_at="2019-05-16T23:59:59Z")
    assert result.counts == {"prs_rejected": 1} and result.day == dt.date(2019, 5, 16) and result.step is None


def test_closed_merged_counts_merged_on_the_merge_day():
    result = effect("pull_request.closed.json", pull_request__merged=True, pull_request__merged_at="2019-05-17T00:00:01Z")
    assert result.counts == {"prs_merged": 1} and result.day == dt.date(2019, 5, 17)


def test_times_with_an_offset_count_on_the_utc_day():
    result = effect("issues.labeled.json", issue__updated_at="2019-05-15T22:30:00-05:00")
    assert result.day == dt.date(2019, 5, 16)


def test_ping():
    assert effect("ping.json").kind == "ping"


@pytest.mark.parametrize("value", [None, "yesterday", 12.5, [], "0001-01-01T00:00:00Z"])
def test_a_bad_time_names_the_field(value):
    with pytest.raises(ValidationError) as raised:
        effect("issues.labeled.json", issue__updated_at=value)
    assert raised.value.field == "issue.updated_at"


def test_event_type_joins_the_action():
    assert github.event_type("issues", {"action": "labeled"}) == "issues.labeled"
    assert github.event_type("ping", {"zen": "x"}) == "ping"


def test_mapping_does_not_change_the_payload():
    payload = fixture("pull_request.closed.json")
    before = copy.deepcopy(payload)
    github.effect_of("pull_request", payload, SETTINGS)
    assert payload == before


@pytest.mark.parametrize("raw", [b"", b"{", b"[1]", b'{"a": NaN}', b'"\\ud800"', b"\xff\xfe", b"[" * 5000])
def test_bad_bodies_are_refused(raw):
    with pytest.raises(ValidationError):
        payloads.parse_json(raw)


@pytest.mark.parametrize("raw", ['{"a": "caf\u00e9"}'.encode("utf-16"), '{"a": 1}'.encode("utf-32-le"),
                                 b'\xef\xbb\xbf{"a": "b"}', b'{"a": "\\ud83d\\ude00"}'])
def test_bodies_that_are_not_plain_utf8_json_are_stored_written_out_again(raw):
    payload = payloads.parse_json(raw)
    assert payloads.stored_text(payload, raw) == json.dumps(payload, ensure_ascii=False)


def test_payloads_no_database_can_store_are_refused_when_stored():
    payload = payloads.parse_json(b'{"a": "\\ud800"}')  # json.loads takes a lone surrogate
    with pytest.raises(ValidationError) as refused:
        payloads.stored_text(payload)
    assert refused.value.field == "body"
    assert payloads.stored_text(payloads.parse_json(b'{"a": "\\u00e9 \\ud83d\\ude00"}')) == '{"a": "\u00e9 \U0001f600"}'
