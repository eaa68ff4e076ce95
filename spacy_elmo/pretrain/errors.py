"""The errors of a pretraining run that the user can fix: the CLI shows them as one line, without a traceback."""


class PretrainError(RuntimeError):
    """A problem the user can fix (bad config, diverged training, missing corpus): shown without traceback."""

    exit_code = 1


class NonFiniteLossError(PretrainError):
    pass


class PretrainInterrupted(PretrainError):
    """SIGINT or SIGTERM during training: a checkpoint of the last finished step was saved."""

    exit_code = 130


__all__ = ["PretrainError", "NonFiniteLossError", "PretrainInterrupted"]
