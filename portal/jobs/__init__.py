"""Scheduled jobs: the registry, the one-runner lock, run records, the scheduler extension, the page and the CLI."""
