"""Documents for people outside: workbooks and canonical JSON, hashed and signed."""
