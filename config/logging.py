"""Logging helpers that settings.LOGGING names."""
import logging


class ClientErrorsOneLine(logging.Filter):
    """A request refused with a 4xx (PermissionDenied, SuspiciousOperation, Http404, a bad
    upload) is the client's mistake, not the site's: one line, with the exception's own
    message, instead of Django's full traceback. Server errors keep theirs."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if record.exc_info and status is not None and status < 500:
            error = record.exc_info[1]
            message = record.getMessage()
            detail = str(error) if error is not None else ""
            if detail and detail not in message:
                message = f"{message} ({type(error).__name__}: {detail})"
            record.msg, record.args = " ".join(message.split()), ()
            record.exc_info = record.exc_text = None
        return True
