#!/usr/bin/env python
import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    if sys.argv[1:2] == ["services"]:
        # The settings start the embedded servers; `services status` and `stop` only look.
        os.environ["GLIMPSE_START_SERVICES"] = "0"
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except KeyboardInterrupt:
        # Ctrl-C is how a long command (an import, embed_catalog) is stopped: no traceback.
        sys.exit(130)


if __name__ == "__main__":
    main()
