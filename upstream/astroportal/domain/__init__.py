"""The portal's work, as plain functions over a SQLAlchemy session: handlers parse, check and call these."""
