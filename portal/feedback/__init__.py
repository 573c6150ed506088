"""Feedback and NPS: recording answers (with a follow-up task for a detractor) and their analysis."""
