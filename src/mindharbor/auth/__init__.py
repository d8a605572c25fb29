"""Identity: passwords, sessions, roles, MFA, single sign-on, mail."""
