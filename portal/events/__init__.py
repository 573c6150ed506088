"""The events log, the unmatched events and their assignment, and the customer's metrics-API key, in the portal.

queries holds the filters, the select() statements and the pure helper naming who sent an event; views the routes.
"""
