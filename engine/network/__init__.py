"""Container networking: bridges, veth pairs, IPAM, /etc files and published ports.

Split so that what the start path always touches stays stdlib-only: ``config``, ``store``
(IPAM and port leases) and ``etcfiles`` are plain Python, while ``links`` (pyroute2) and
``nft`` (libnftables) are imported only when a container actually needs a network device
or a rule. ``--network none`` and ``host`` never import this package at all.
"""
