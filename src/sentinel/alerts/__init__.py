"""Alert lifecycle and notifications."""
