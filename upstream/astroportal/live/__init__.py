"""The live activity feed and subscriptions.

    feed.py           events written in the transaction of the change, NOTIFY'd; reading them back with permissions
    bus.py            one LISTEN connection per app process on Tornado's IOLoop; hands events to the websockets
    sockets.py        the websocket clients' filters, batching and slow-client policy
    frames.py         websocket frames built once and written straight to many connections
    subscriptions.py  creating, checking and listing subscriptions
    sky_index.py      cone subscriptions in a dec-band / ra-bucket grid (matching a position without a loop)
    matching.py       events -> notifications and deliveries, each event once across processes
    channels.py       e-mail and webhook messages, with retries and the private-address guard
    unsubscribe.py    signed single-purpose unsubscribe links
    notifier.py       the app process's background work: matching, sending, pruning
"""
