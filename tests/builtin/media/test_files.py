"""WAV files in (the player) and out (the recorder)."""

from pathlib import Path
import struct

import pytest

from custom_components.sip_endpoint.worker.builtin.media import player
from custom_components.sip_endpoint.worker.builtin.media.codec import FRAME_BYTES
from custom_components.sip_endpoint.worker.builtin.media.player import (
    Player,
    WavError,
    check_wav,
    load_wav,
)
from custom_components.sip_endpoint.worker.builtin.media.recorder import Recorder
from tests.sipbed.audio import dominant_frequency, read_pcm, rms, sox_sine, write_tone


def values(pcm: bytes) -> list[int]:
    """Return s16le samples."""
    return list(struct.unpack(f"<{len(pcm) // 2}h", pcm))


@pytest.mark.parametrize(
    "options",
    [
        ("-r", "8000", "-c", "1", "-b", "16"),
        ("-r", "44100", "-c", "2", "-b", "16"),
        ("-r", "16000", "-c", "1", "-b", "8"),
        ("-r", "48000", "-c", "1", "-b", "24"),
        ("-r", "22050", "-c", "1", "-b", "32", "-e", "signed-integer"),
        ("-r", "8000", "-c", "1", "-e", "u-law"),
        ("-r", "8000", "-c", "2", "-e", "a-law"),
        ("-r", "11025", "-c", "6", "-b", "16"),
    ],
)
def test_load_wav_converts_to_8khz_mono(
    tmp_path: Path, options: tuple[str, ...]
) -> None:
    pcm = load_wav(str(sox_sine(tmp_path / "tone.wav", *options)))
    samples = values(pcm)
    assert len(samples) == pytest.approx(8000, abs=8)
    assert dominant_frequency(samples, 8000) == pytest.approx(440, abs=3)
    assert rms(samples) == pytest.approx(0.5 / 2**0.5, rel=0.1)


def test_extensible_wav_is_read(tmp_path: Path) -> None:
    # sox writes WAVE_FORMAT_EXTENSIBLE for more than two channels or 24 bits.
    path = sox_sine(tmp_path / "ext.wav", "-r", "8000", "-c", "4", "-b", "24")
    assert struct.unpack_from("<H", path.read_bytes(), 20)[0] == 0xFFFE
    assert dominant_frequency(values(load_wav(str(path))), 8000) == pytest.approx(
        440, abs=3
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not a WAV file"),
        (b"ID3\x03\x00" + bytes(100), "not a WAV file"),
        (b"RIFF\x00\x00\x00\x00WAVE", "no fmt chunk"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt \x10\x00\x00\x00" + bytes(16), "no data chunk"),
        (b"RIFF\x00\x00\x00\x00WAVEdata\x00\x00\x00\x00", "data chunk before"),
        (
            b"RIFF\x00\x00\x00\x00WAVEfmt \x04\x00\x00\x00abcddata\x00\x00\x00\x00",
            "too short",
        ),
        (
            b"RIFF\x00\x00\x00\x00WAVEfmt \x10\x00\x00\x00"
            + struct.pack("<HHIIHH", 1, 0, 8000, 16000, 2, 16)
            + b"data\x00\x00\x00\x00",
            "channel count 0",
        ),
        (
            b"RIFF\x00\x00\x00\x00WAVEfmt \x10\x00\x00\x00"
            + struct.pack("<HHIIHH", 1, 1, 10, 20, 2, 16)
            + b"data\x00\x00\x00\x00",
            "sample rate 10",
        ),
        (
            b"RIFF\x00\x00\x00\x00WAVEfmt \x10\x00\x00\x00"
            + struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 12)
            + b"data\x00\x00\x00\x00",
            "12 bits",
        ),
        (
            b"RIFF\x00\x00\x00\x00WAVEfmt \x10\x00\x00\x00"
            + struct.pack("<HHIIHH", 7, 1, 8000, 16000, 2, 16)
            + b"data\x00\x00\x00\x00",
            "8-bit samples",
        ),
        (
            b"RIFF\x00\x00\x00\x00WAVEfmt \x10\x00\x00\x00"
            + struct.pack("<HHIIHH", 0xFFFE, 1, 8000, 16000, 2, 16)
            + b"data\x00\x00\x00\x00",
            "extensible fmt chunk too short",
        ),
    ],
)
def test_bad_wav_files_are_refused_with_a_reason(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(WavError, match=message):
        load_wav(str(path))


def test_float_wav_is_refused_by_name(tmp_path: Path) -> None:
    path = sox_sine(
        tmp_path / "float.wav",
        "-r",
        "8000",
        "-c",
        "1",
        "-e",
        "floating-point",
        "-b",
        "32",
    )
    with pytest.raises(
        WavError, match=r"float\.wav: unsupported WAV encoding IEEE float"
    ):
        load_wav(str(path))


def test_missing_and_too_large_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(WavError, match=r"nothing\.wav: cannot read: No such file"):
        load_wav(str(tmp_path / "nothing.wav"))
    path = write_tone(tmp_path / "big.wav", 440, 1)
    monkeypatch.setattr(player, "MAX_WAV_BYTES", 1000)
    with pytest.raises(WavError, match="larger than"):
        load_wav(str(path))


def test_check_wav_reads_only_the_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_tone(tmp_path / "tone.wav", 440, 1)
    assert check_wav(str(path)) == path.stat().st_size
    float_wav = sox_sine(
        tmp_path / "float.wav",
        "-r",
        "8000",
        "-c",
        "1",
        "-e",
        "floating-point",
        "-b",
        "32",
    )
    with pytest.raises(WavError, match="IEEE float"):
        check_wav(str(float_wav))
    (tmp_path / "text.wav").write_text("hello")
    with pytest.raises(WavError, match="not a WAV file"):
        check_wav(str(tmp_path / "text.wav"))
    with pytest.raises(WavError, match="cannot read"):
        check_wav(str(tmp_path / "missing.wav"))
    monkeypatch.setattr(player, "MAX_WAV_BYTES", 1000)
    with pytest.raises(WavError, match="larger than"):
        check_wav(str(path))


def test_truncated_data_chunk_plays_what_is_there(tmp_path: Path) -> None:
    path = write_tone(tmp_path / "tone.wav", 440, 1)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert len(load_wav(str(path))) == len(data) // 2 - 44


def test_player_plays_once_with_a_padded_last_frame() -> None:
    pcm = bytes(range(256)) * 3  # 768 bytes: two frames and a bit
    playing = Player(pcm, loop=False)
    frames = [playing.next_frame() for _ in range(4)]
    assert frames[0] == pcm[:FRAME_BYTES]
    assert frames[1] == pcm[FRAME_BYTES : 2 * FRAME_BYTES]
    assert frames[2] == pcm[2 * FRAME_BYTES :] + bytes(3 * FRAME_BYTES - len(pcm))
    assert frames[3] is None
    assert playing.finished


def test_player_loops_seamlessly() -> None:
    pcm = bytes(range(200)) * 2  # 400 bytes: one frame and 80 bytes
    playing = Player(pcm, loop=True)
    out = b"".join(playing.next_frame() or b"" for _ in range(10))
    assert out == (pcm * 8)[: 10 * FRAME_BYTES]
    assert not playing.finished


def test_player_loops_a_file_shorter_than_a_frame() -> None:
    playing = Player(b"\x01\x02\x03\x04", loop=True)
    assert playing.next_frame() == b"\x01\x02\x03\x04" * (FRAME_BYTES // 4)
    assert Player(b"", loop=True).next_frame() is None


@pytest.mark.parametrize("rate", [8000, 16000])
def test_recorder_writes_a_wav_with_a_final_header(tmp_path: Path, rate: int) -> None:
    tone = load_wav(str(write_tone(tmp_path / "in.wav", 440, 1)))
    recorder = Recorder(str(tmp_path / "out.wav"), rate=rate)
    for offset in range(0, len(tone), FRAME_BYTES):
        recorder.write(tone[offset : offset + FRAME_BYTES])
    duration = recorder.close()
    assert recorder.closed
    assert duration == pytest.approx(1.0, abs=0.01)
    samples, read_rate = read_pcm(tmp_path / "out.wav")
    assert read_rate == rate
    assert len(samples) == pytest.approx(rate, abs=4)
    assert dominant_frequency(samples, rate) == pytest.approx(440, abs=3)
    recorder.write(tone)  # after close: ignored
    assert recorder.close() == duration


def test_recorder_refuses_a_bad_rate_or_path(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="recording rate"):
        Recorder(str(tmp_path / "x.wav"), rate=44100)
    with pytest.raises(OSError, match="No such file"):
        Recorder(str(tmp_path / "missing" / "x.wav"))


def test_an_empty_recording_is_a_valid_wav(tmp_path: Path) -> None:
    recorder = Recorder(str(tmp_path / "empty.wav"))
    assert recorder.close() == 0
    assert read_pcm(tmp_path / "empty.wav") == ([], 8000)


def test_each_second_of_a_recording_reaches_the_file(tmp_path: Path) -> None:
    """The recorder flushes once per second of audio, not when the buffer fills."""
    path = tmp_path / "flushed.wav"
    recorder = Recorder(str(path))
    for _ in range(50):
        recorder.write(bytes(FRAME_BYTES))
    # One second at 8 kHz s16le (16000 bytes) after the 44-byte header.
    assert path.stat().st_size == 44 + 16000
    recorder.close()


def test_a_full_disk_ends_the_recording_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    recorder = Recorder("/dev/full")
    written = 0
    while not recorder.closed and written < 200:
        recorder.write(bytes(FRAME_BYTES))
        written += 1
    # The buffer is flushed once per second of audio (50 frames), so the error
    # surfaces by then whatever the interpreter's buffer size; nothing reached the file.
    assert recorder.closed
    assert written <= 50
    assert recorder.duration == 0
    assert "Recording stopped: cannot write: No space left on device" in caplog.text
    assert recorder.close() == recorder.duration
