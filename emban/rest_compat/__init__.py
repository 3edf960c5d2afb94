"""The documented ``/v1`` REST surface: thin handlers over ``emban.services``."""
