"""Who is asking and what they may do: identities, ACLs and class-level permissions."""
