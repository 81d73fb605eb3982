"""`wasmetool init`: language/platform choice and template rendering."""
