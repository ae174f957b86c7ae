"""The schema of Clearhouse as Alembic migrations, shipped inside the package.

``versions/`` holds the revisions, ``functions/`` the database functions, one SQL file per
version of each (``NAME.REVISION.sql``, loaded by name by the revision that creates it; the
newest is the live one). ``clearhouse.storage.migrate`` runs them.
"""
