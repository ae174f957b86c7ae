"""The database: engine, embedded server, tables and set-based queries."""
