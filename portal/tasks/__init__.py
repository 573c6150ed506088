"""Tasks: the interventions of kind "task", listed for their assignee, completed or snoozed in place."""
