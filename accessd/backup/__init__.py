"""Backup and restore of a whole deployment: the database and the files beside it."""
