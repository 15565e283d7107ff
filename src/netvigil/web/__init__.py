"""What every route of the one web app needs of a request, below both sides that serve one.

The collector's intake routes and the report's admin routes read a body with a cap and check
a bearer token the same way; request.py does it once, so neither side imports the other.
"""
