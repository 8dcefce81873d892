"""The distribution's GCN service: notices from GCN's Kafka topics (LVK's igwn.gwalert JSON, Fermi and Swift
VOEvents) into the portal's POST /api/gcn_event.

A service of its own: it speaks to the portal only over HTTP with a token of its own, and never imports the
portal. Delivery is at least once (offsets committed after the portal accepted a notice); the portal recognises
a repeated notice, so each lands once.
"""
