""".env.example documents every setting that settings.py reads from the environment."""

import re

from django.conf import settings


def test_every_environment_variable_settings_reads_is_in_env_example() -> None:
    source = (settings.BASE_DIR / "guildhub" / "settings.py").read_text()
    read = set(re.findall(r"env\.\w+\(\s*\"([A-Z0-9_]+)\"", source))
    documented = set(
        re.findall(r"^#? ?([A-Z0-9_]+)=", (settings.BASE_DIR / ".env.example").read_text(), flags=re.MULTILINE)
    )

    assert read, 'found no env.<type>("NAME") calls in settings.py: the pattern needs updating'
    assert read - documented == set()
