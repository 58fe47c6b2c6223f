"""`sagepipe models`: the stack's model package group read and decided on (list, show, approve, reject, champion)."""
