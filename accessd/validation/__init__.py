"""Certificate validation for PIV credentials: paths, policies, revocation, cache."""
