"""The import and export pages: upload the export zip or one CSV, download the zip or any single CSV."""
from __future__ import annotations

import json
import tempfile
import zipfile
from pathlib import Path

from flask import (Blueprint, Response, abort, flash, make_response, render_template, request, send_file,
                   stream_with_context)
from flask_login import login_required
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from sqlalchemy.exc import IntegrityError
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.utils import secure_filename

from ..auth import actor, editor_required
from ..extensions import db
from ..pages import wants_fragment
from . import exports, imports
from .csvformat import IMPORTABLE, ImportRejected
from .limits import FileRefused

bp = Blueprint("transfer", __name__)
MAX_UPLOAD_MB = 20
ACCEPTED = f"the export zip or one of {', '.join(IMPORTABLE)}"


class ImportForm(FlaskForm):
    file = FileField("Export zip or CSV file", validators=[FileRequired("Choose a file to import.")])


class Unusable(Exception):
    """An upload that cannot be imported at all; the message says why."""


@bp.url_value_preprocessor
def limit_upload_size(_endpoint, _values) -> None:
    # URL value preprocessors run before the app's before_request hooks, CSRFProtect's among them, which
    # reads the form: so the limit holds before any of the body is read, for this blueprint only.
    request.max_content_length = MAX_UPLOAD_MB * 1024 * 1024 + 64 * 1024  # room for the form around the file


def import_upload(upload: FileStorage, actor_name: str) -> imports.ImportResult:
    """Save the upload under its own name, which decides what a CSV holds, and import it in the session."""
    name = Path(upload.filename or "").name
    try:
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / (secure_filename(name) or "upload")
            upload.save(path)
            if not zipfile.is_zipfile(path) and path.name not in (*IMPORTABLE, imports.DERIVED):
                raise Unusable(f"{name} is not {ACCEPTED}.")
            return imports.import_path(path, actor_name)
    except UnicodeDecodeError:
        raise Unusable(f"{name} is not UTF-8 text: save it as “CSV UTF-8” and upload it again.") from None
    except imports.UNREADABLE as error:
        raise Unusable(f"{name} cannot be read: {error}.") from None
    except IntegrityError:
        raise Unusable("The database refused the import, probably because of a change made at the same time: "
                       "upload the file again.") from None


def counts_of(result: imports.ImportResult) -> list[tuple[str, int, int, int]]:
    """(file, created, updated, unchanged) for each file that had rows."""
    return [(name, result.created.get(name, 0), result.updated.get(name, 0), result.unchanged.get(name, 0))
            for name in IMPORTABLE if name in result.created or name in result.updated or name in result.unchanged]


def render_import(status: int = 200, form: ImportForm | None = None, **result):
    """The result area for htmx, the whole page otherwise; errors are 422 for htmx, which swaps them in place."""
    fragment = wants_fragment()
    if status == 422 and not fragment:
        status = 200
    if fragment:
        body = render_template("transfer/_result.html", fragment=True, **result)
    else:
        body = render_template("transfer/index.html", form=form or ImportForm(formdata=None), **result)
    response = make_response(body, status)
    response.vary.add("HX-Request")
    return response


@bp.get("/import")
@login_required
def import_page():
    return render_template("transfer/index.html", form=ImportForm())


@bp.post("/import")
@editor_required
def import_file():
    form = ImportForm()
    if not form.validate_on_submit():
        return render_import(422, form, problem=" ".join(form.file.errors))
    name = Path(form.file.data.filename).name
    try:
        result = import_upload(form.file.data, actor()[0])
    except ImportRejected as rejected:
        db.session.rollback()
        return render_import(422, form, rejected=rejected.lines(), more=rejected.more(), bad_lines=rejected.bad.count,
                             name=name)
    except Unusable as problem:
        db.session.rollback()
        return render_import(422, form, problem=f"{problem} Nothing was imported.")
    except FileRefused as refused:  # its message says that nothing was imported
        db.session.rollback()
        return render_import(422, form, problem=f"{refused}.")
    db.session.commit()
    counts = counts_of(result)
    if counts:
        created, updated, unchanged = (sum(row[column] for row in counts) for column in (1, 2, 3))
        flash(f"Imported {name}: {created} created, {updated} updated, {unchanged} unchanged.", "success")
    else:
        flash(f"Nothing to import: {name} has no customer, onboarding or engagement rows.", "message")
    return render_import(200, form, counts=counts, name=name)


@bp.errorhandler(RequestEntityTooLarge)
def upload_too_large(_error):
    problem = f"The file is larger than {MAX_UPLOAD_MB} MB: nothing was imported. Import one CSV at a time."
    response = render_import(413, problem=problem)
    response.headers["HX-Trigger"] = json.dumps({"toast": problem})  # htmx does not swap a 413; the toast tells
    return response


# Import and export share one page; both addresses lead to it.
bp.add_url_rule("/export", "export_page", import_page)


@bp.get("/export/customer-tracking.zip")
@login_required
def export_zip():
    # A zip's directory is written after its members, so it needs a file it can seek in: on disk, not in memory.
    archive = tempfile.TemporaryFile()
    try:
        exports.write_zip(archive)
    except Exception:
        archive.close()
        raise
    size = archive.tell()
    archive.seek(0)
    response = send_file(archive, mimetype="application/zip", as_attachment=True,
                         download_name=exports.default_path(Path()).name)
    response.content_length = size
    return response


@bp.get("/export/<name>.csv")
@login_required
def export_csv(name: str):
    filename = f"{name}.csv"
    if filename not in exports.EXPORTS:
        abort(404)
    response = Response(stream_with_context(exports.csv_chunks(filename)), mimetype="text/csv")
    response.headers.set("Content-Disposition", "attachment", filename=filename)
    return response
