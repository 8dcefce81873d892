"""What every distribution service needs around its own work: the portal's HTTP API with the service's token,
retries and error classes (portal_http), reading its part of the merged configuration (settings), dead letters
(dead_letters), and a few process helpers (process).

It lives in services/common/, beside the service folders, and is copied with them wherever services run; each
service package puts it on sys.path (see its __init__). Services still talk to the portal over HTTP only.
"""
