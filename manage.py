#!/usr/bin/env python
import os
import sys

# Commands that only read or stop the embedded servers, and help of any kind, start none.
STARTS_NOTHING = {"help", "services", "version"}


def starts_services(argv: list[str]) -> bool:
    command = argv[1] if len(argv) > 1 else "help"
    return command not in STARTS_NOTHING and not {"-h", "--help", "--version"} & set(argv[2:])


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line

    try:
        if starts_services(sys.argv):
            from django.core.exceptions import ImproperlyConfigured

            from config import embedded

            try:
                embedded.start()  # the first use of the settings: their errors show here
            except ImproperlyConfigured as error:
                sys.exit(f"glimpse: {error}")
        execute_from_command_line(sys.argv)
    except KeyboardInterrupt:
        # Ctrl-C is how a long command (an import, embed_catalog) is stopped: no traceback.
        sys.exit(130)


if __name__ == "__main__":
    main()
