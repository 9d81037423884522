"""Certificate validation for PIV credentials (issue 4): paths, policies, revocation, cache."""
