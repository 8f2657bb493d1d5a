"""Read side of the processors: reconciliation reports, message and opt-out lookups, export formats."""
