import pytest


@pytest.fixture
def discord_settings(settings, emulator):
    """Point GuildHub at the test emulator, with quick retries."""
    settings.DISCORD_TOKEN = "test-token"
    settings.DISCORD_API_BASE = emulator.api_base
    settings.DISCORD_RETRY_BASE = 0.01
    settings.DISCORD_RETRY_CAP = 0.05
    return settings


@pytest.fixture
def emulator_guild(emulator):
    return next(iter(emulator.world.guilds.values()))
