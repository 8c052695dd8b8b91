"""A Discord API emulator that real discord.py talks to unchanged."""
