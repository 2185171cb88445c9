"""Errors a user can act on: each carries one line that says what to do."""


class QAError(Exception):
    """Base class; ``str(error)`` is the message shown to the user."""


class EmptyQuestionError(QAError):
    pass


class QuestionTooLongError(QAError):
    pass


class NoDocumentsError(QAError):
    pass


class ModelError(QAError):
    pass


class IndexUnavailableError(QAError):
    """The index is missing, corrupt, or built with other settings."""


class DocumentError(QAError):
    """A file could not be read; loading skips it with a warning."""


class ConfigurationError(QAError):
    """A setting (``QA_*`` variable or flag) has a value that cannot work."""


class GeneratorUnavailableError(ModelError):
    """The generator server is down, too slow, refuses the key, or answers an error."""


class IndexBusyError(QAError):
    """Another process is writing the same index."""


class StorageError(QAError):
    """The index could not be written (disk full, no permission); the previous one is intact."""


class UploadError(QAError):
    """An upload cannot be stored (its name would leave the uploads folder)."""


class QuestionSetError(QAError):
    """The question set cannot be read, or holds no usable question."""


class UsageError(QAError):
    """A command was given arguments that do not go together, or none it needs."""
