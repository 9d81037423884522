"""Use cases over the database: each function takes an AsyncSession and an actor, enforces
the domain rules, writes the audit trail and stages events; the caller commits."""
