"""The HTTP face of Clearhouse: thin controllers over the services."""
