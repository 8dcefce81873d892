"""Tornado handlers. Each module under handlers.api and handlers.pages exports ROUTES, mounted by the app factory."""
