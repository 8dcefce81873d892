"""The solve service: plate solving with astrometry.net inside the portal (the distribution's extension).

Modules, each with one job:
  models       the tables (submissions, jobs, their transitions, nova API sessions)
  options      nova's request options: checked, refused by name when unknown or out of range
  inputs       what an upload or a URL may be (images, FITS, x/y lists), checked before anything is queued
  storage      where inputs and results live under paths.var
  queue        the state machine: create, claim with a lease, heartbeat, finish, cancel, retry
  results      calibration, matched stars and coordinate grid from a solved job's files
  nova_api     the nova.astrometry.net-compatible API under /nova/
  worker_api   the API the workers (services/solve) use: claim, heartbeat, input, results
  pages        the upload form, the jobs table and the job page
"""
