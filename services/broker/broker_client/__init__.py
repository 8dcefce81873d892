"""The distribution's broker client: Fink alerts (Kafka livestream, REST API or Avro files) into the portal.

A service of its own: it speaks to the portal only over HTTP with a token of its own, and never imports the
portal. Delivery is at least once into idempotent writes, which makes every alert land exactly once.
"""
