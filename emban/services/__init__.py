"""The domain: every rule (permissions, plan limits, validation, audit) lives here, once.

GraphQL resolvers and ``/v1`` handlers only parse, call one function here and shape the answer.
Services never commit: the request or job boundary owns the transaction.
"""
