"""The health score's domain: what the score is, what it is kept as, and what is raised beside it.

- metrics: the SPEC's formulas as pure functions (components, score, band, lifecycle stage);
- snapshots: the daily snapshot per customer (health_scores), recalculated with a few set-based queries;
- explain: why a score is what it is and why it moved, from two snapshots;
- risk: the product's risk signals (uninstalled, inactive, rejections rising, blocker, detractor);
- settings: the portal's settings beside the versioned health weights;
- rule_tasks: tasks made by rules, at most one pending per rule and customer.
"""
