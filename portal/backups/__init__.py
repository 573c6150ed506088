"""Backups of the whole portal: the database, the secret key that signs mailed links, and a manifest.

archive.py is the file format (pure), databases.py the dump and restore of each database kind, retention.py which
backups to keep (pure), service.py what `flask backup` and the scheduled job do, commands.py the commands.
"""
