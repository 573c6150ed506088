"""Customers, their onboarding and their daily engagement."""
