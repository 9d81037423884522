"""Operator authentication (argon2id passwords, bearer tokens) and role permissions."""
