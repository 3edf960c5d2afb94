"""Paddle Billing: the provider's wire (signatures, notifications, API calls). What a payment
changes in the product lives in :mod:`emban.services.billing`."""
