"""The gateway bot behind `manage.py runbot`: Discord events in, GuildHub services out."""
