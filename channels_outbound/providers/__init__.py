"""Provider modules. Each one registers its sender; adding a provider is adding a module here."""
