"""`flask --app wsgi backup create [--to DIR]` and `backup restore FILE [--force]`."""
from __future__ import annotations

from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup

from .archive import BackupError
from . import service

backup = AppGroup("backup", help="Back up the whole portal (database and secret key), or restore it.")


@backup.command("create")
@click.option("--to", "directory", type=click.Path(path_type=Path), default=None,
              help="The folder to write it in; default BACKUP_DIR (instance/backups).")
def create(directory: Path | None) -> None:
    """Write one backup file: the whole database, the secret key and a manifest; print its path."""
    try:
        path, _ = service.create(directory)
    except BackupError as error:
        raise click.ClickException(str(error)) from None
    click.echo(str(path))


@backup.command("restore")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Replace a database that already holds data.")
def restore(file: Path, force: bool) -> None:
    """Replace the database with FILE's and put its secret key back; refuses a non-empty database without --force."""
    try:
        restored = service.restore(file, force)
    except BackupError as error:
        raise click.ClickException(str(error)) from None
    for message in restored.messages:
        click.echo(message)


def init_app(app: Flask) -> None:
    app.cli.add_command(backup)
