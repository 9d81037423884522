"""Access decisions in the service: the policy snapshot loaded from the database and kept
current from the event bus and the audit feed, the decision path every transport uses,
and the store of decision events."""
