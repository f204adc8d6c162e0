"""WAV files played into a call as 20 ms frames of 8 kHz 16-bit mono PCM."""


class WavError(ValueError):
    """A WAV file that cannot be played: unreadable, too large or an unsupported format."""
