"""The GraphQL edge (Strawberry): types, queries, mutations; thin adapters over services."""
