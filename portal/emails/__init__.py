"""Emails: the outbox, its delivery over ConvertKit or SMTP, the campaigns that fill it, unsubscribes and NPS."""
