"""The only package that imports discord.py; the rest of GuildHub calls it."""
