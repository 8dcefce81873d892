"""A plate-solving worker: claims jobs from the portal over HTTP and runs solve-field on them.

Modules: client (the portal's worker API), runner (solve-field in a scratch directory under a hard
wall-clock limit), worker (the claim / run / report loop), __main__ (the command line).
"""
