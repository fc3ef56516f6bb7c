"""Tenants (vetted organisations), their API keys, roles, limits and bank access."""
