"""optout-bridge domain package: shared by every Lambda function; knows nothing of Lambda events."""
