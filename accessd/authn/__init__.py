"""Authentication evidence: challenges for cards and the proofs readers bring back."""
