"""Inbound integrations (SPEC section 6): GitHub and landing-site webhooks and the product metrics API.

signatures, payloads, github, track and landing are pure (no Flask); service applies an event in
one transaction; views holds the thin HTTP layer.
"""
