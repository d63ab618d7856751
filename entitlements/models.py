"""entitlements models."""
