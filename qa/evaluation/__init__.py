"""Evaluation: question sets (parsing), metrics (scoring), the runner that asks them,
and the report (console table, report.json, report.md)."""
