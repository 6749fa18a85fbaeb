"""Math shared by every algorithm: no environment, IO or CLI code lives here."""
