"""MTA-STS (RFC 8461) and DANE (RFC 7672) for the domains mrod routes by their own MX records:
the policy's parser (policy.py), the fetcher (fetch.py, dane.py), the cache table's owner
(cache.py) and the refresh job (refresh.py). lookupd only reads the cached answers."""
