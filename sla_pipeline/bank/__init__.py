"""The sample bank: every labelled policy answer the project draws, kept in the repository (bank/MODEL/)
as compressed JSON Lines with a manifest, so that nothing drawn is ever drawn again."""
