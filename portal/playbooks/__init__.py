"""Playbooks: a condition that picks customers and steps (a task, a note, an email) started for each of them."""
