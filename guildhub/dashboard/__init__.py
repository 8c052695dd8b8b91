"""The dashboard: guild list, guild page (member picker, sync status, Sync now), job detail."""
