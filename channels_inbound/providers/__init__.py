"""Provider modules. Each one registers its webhook adapter; adding a provider is adding a module here."""
