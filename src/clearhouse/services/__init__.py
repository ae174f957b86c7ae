"""One module per job a user has; the only place that decides transaction boundaries."""
