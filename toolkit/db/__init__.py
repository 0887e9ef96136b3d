"""Database backends: one per kind of database, all behind :class:`toolkit.db.base.Backend`."""
