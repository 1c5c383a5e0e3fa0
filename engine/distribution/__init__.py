"""Distribution: image references, the registry HTTP API v2 client, pull and push.

Only ``pydock pull/push/login/logout`` import this package; ``pydock run`` never does.
"""
